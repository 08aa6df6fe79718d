"""The texts of the mails sent to persons (services.notices), from the pages' catalogues: short, in the
person's language, naming the institution and the purpose, linking to the page. They carry no identity
number and no amount: nothing a notice says comes from a debt, only from the lookup's event."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from register.config import Settings
from register.crypto.fields import FieldCipher
from register.services.mail import mailer_of
from register.services.notices import Item, Notifier
from register.web import labels
from register.web.i18n import LANGUAGES, DEFAULT_LANGUAGE, Formats, translations
from register.web.labels import N_

SUBJECT_ONE = N_("%(institution)s looked at your debts")
SUBJECT_REFUSED = N_("%(institution)s tried to look at your debts")
SUBJECT_DIGEST = N_("Lookups of your debts: %(count)d")
LINE_GRANTED = N_("%(time)s: %(institution)s looked at your debts %(purpose)s.")
LINE_REFUSED = N_("%(time)s: %(institution)s tried to look at your debts %(purpose)s, and was refused.")
NO_PURPOSE = N_("without a stated purpose")
SEE = N_("See who looked, and why, on your page: %(link)s")
SEE_MORE = N_("See more on your page: %(link)s")
NOT_YOU = N_("If you do not know the institution, contact it, or set a credit ban on your page.")
CONFIRM_SUBJECT = N_("Confirm your address for notices from the register")
CONFIRM_TEXT = N_("Someone asked the register to send notices about lookups of their debts to this address. "
                  "If it was you, open this link and press Confirm:")
CONFIRM_IGNORE = N_("If it was not you, do nothing: nothing will be sent.")
FOOTER = N_("You get this because you asked for notices. Turn them off on your page: %(link)s")
UNKNOWN_INSTITUTION = N_("An institution")
SUBJECT_CHANGE = N_("News about your data in the register")
# A change from the outbox, by its type: what the line of a notice says.
CHANGES = {
    "consent.given": N_("%(time)s: a consent to %(institution)s was recorded %(purpose)s."),
    "consent.revoked": N_("%(time)s: your consent to %(institution)s was withdrawn."),
    "dispute.opened": N_("%(time)s: your dispute with %(institution)s was opened."),
    "dispute.answered": N_("%(time)s: %(institution)s answered your dispute."),
    "dispute.withdrawn": N_("%(time)s: your dispute with %(institution)s was withdrawn."),
    "dispute.overdue": N_("%(time)s: %(institution)s did not answer your dispute in time."),
    "credit_ban.set": N_("%(time)s: your credit ban was set."),
    "credit_ban.lifted": N_("%(time)s: your credit ban was lifted."),
}


class MailComposer:
    """services.notices.Composer over the pages' catalogues."""

    def __init__(self, public_url: str) -> None:
        self.public_url = public_url.rstrip("/")

    def _(self, language: str):  # noqa: ANN202
        return translations(language if language in LANGUAGES else DEFAULT_LANGUAGE).gettext

    def confirmation(self, *, language: str, link: str) -> tuple[str, str]:
        _ = self._(language)
        return _(CONFIRM_SUBJECT), f"{_(CONFIRM_TEXT)}\n\n{link}\n\n{_(CONFIRM_IGNORE)}\n"

    def notice(self, *, language: str, country: str, items: list[Item], link: str) -> tuple[str, str]:
        _ = self._(language)
        lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
        fmt = Formats(lang, country)
        lines = []
        for item in items:
            purpose = _(labels.PURPOSES[item.purpose]) if item.purpose in labels.PURPOSES else _(NO_PURPOSE)
            if item.type == "lookup":
                line = LINE_REFUSED if item.outcome == "refused" else LINE_GRANTED
            else:
                line = CHANGES.get(item.type, SUBJECT_CHANGE)
            lines.append(_(line) % {"time": fmt.datetime(item.occurred_at),
                                    "institution": item.institution or _(UNKNOWN_INSTITUTION), "purpose": purpose})
        if len(items) == 1 and items[0].type != "lookup":
            subject = _(SUBJECT_CHANGE)
        elif len(items) == 1:
            first = items[0]
            who = first.institution or _(UNKNOWN_INSTITUTION)
            key = SUBJECT_REFUSED if first.outcome == "refused" else SUBJECT_ONE
            subject = _(key) % {"institution": who}
        else:
            subject = _(SUBJECT_DIGEST) % {"count": len(items)}
        settings = f"{self.public_url}/app/notifications"
        if all(i.type == "lookup" for i in items):
            see = f"{_(SEE) % {'link': link}}\n{_(NOT_YOU)}"
        else:
            see = _(SEE_MORE) % {"link": link}
        text = "\n".join(lines) + f"\n\n{see}\n\n-- \n{_(FOOTER) % {'link': settings}}\n"
        return subject, text


def notifier_of(settings: Settings, sessions: sessionmaker[Session], cipher: FieldCipher) -> Notifier:
    """The notifier of persons' notices (services.notices) with the SMTP server and these texts: for the
    server's background thread and `register notices run`."""
    return Notifier(sessions, cipher, mailer_of(settings), MailComposer(settings.public_url),
                    public_url=settings.public_url, retry_seconds=settings.notice_interval_seconds)

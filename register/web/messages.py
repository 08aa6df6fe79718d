"""The pages' messages: extracted from the templates and from Python (N_ and gettext calls), and the
catalogues brought in step with them.

    .venv/bin/python -m register.web.messages     # or: make messages

adds new messages to every catalogue (untranslated, so tests/web/test_i18n.py fails until they are
translated) and marks messages no longer used as obsolete. Translations already made are kept.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from register.web.i18n import LANGUAGES

HERE = Path(__file__).resolve().parent
METHOD_MAP = [("templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS_MAP = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "silent": "false", "trimmed": "true"}}


def extract_messages() -> Catalog:
    """Every message the pages use, as a template catalogue."""
    template = Catalog(project="register", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        HERE, METHOD_MAP, OPTIONS_MAP, comment_tags=("Translators:",), strip_comment_tags=True
    ):
        template.add(message, None, [(f"register/web/{filename}", lineno)], auto_comments=comments, context=context)
    return template


def catalogue_file(lang: str) -> Path:
    return HERE / "locale" / lang / "LC_MESSAGES" / "messages.po"


def update_catalogues() -> None:
    template = extract_messages()
    for lang in LANGUAGES:
        path = catalogue_file(lang)
        if path.exists():
            with path.open("rb") as f:
                catalog = read_po(f, locale=lang)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=lang, project="register", fuzzy=False)
        catalog.update(template, no_fuzzy_matching=True)
        with path.open("wb") as f:
            write_po(f, catalog, width=100, omit_header=False, sort_output=False, include_previous=False)


if __name__ == "__main__":
    update_catalogues()

"""Plain words for the register's codes. Marked with N_ so the catalogue test extracts them; the
templates translate them when they render (`_(label)`)."""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802  (gettext's name for "translate later")
    return message


KINDS = {
    "buy_now_pay_later": N_("Buy now, pay later"),
    "collection_claim": N_("Claim held by a debt collector"),
    "credit_card": N_("Credit card"),
    "instalment_loan": N_("Loan paid in instalments"),
    "mortgage": N_("Mortgage"),
    "other": N_("Other credit"),
    "overdraft": N_("Overdraft"),
    "revolving_credit": N_("Credit line"),
    "student_loan": N_("Student loan"),
    "vehicle_loan": N_("Car loan"),
}

ROLES = {
    "primary": N_("Your own debt"),
    "co_debtor": N_("Shared: you and someone else owe it together"),
    "guarantor": N_("You are guarantor: you pay only if the borrower does not"),
}

# status -> (icon, words). The icon is never the only sign: the words always go with it.
STATUSES = {
    "current": ("✓", N_("Paid as agreed")),
    "overdue": ("!", N_("Payments are late")),
    "in_collection": ("!", N_("With a debt collector")),
    "payment_plan": ("↻", N_("On a payment plan")),
    "enforcement": ("!", N_("With the enforcement authority")),
    "written_off": ("–", N_("Written off by the creditor")),
    "closed": ("✓", N_("Repaid and closed")),
}
NEEDS_HELP = frozenset({"overdue", "in_collection", "enforcement"})

PURPOSES = {
    "credit_application": N_("to decide on a credit application"),
    "credit_limit_review": N_("to review a credit limit"),
    "debt_restructuring": N_("to help restructure debts"),
}

# What an event about the person was, in words. Anything else shows as "Other use of your data".
ACTIONS = {
    "exposure:query": N_("Looked at your debts"),
    "exposure:read": N_("Read an answer the register gave about your debts"),
    "exposure:as_of": N_("Looked at your debts as they stood at an earlier time"),
    "consent:attest": N_("Recorded a consent you signed with them"),
    "obligation:created": N_("Reported a new debt"),
    "obligation:updated": N_("Updated a debt"),
    "obligation:reinstated": N_("Reported a debt again"),
    "obligation:retracted": N_("Withdrew a debt"),
    "regulator:events:search": N_("Supervisor checked who looked at your data"),
    # A lender or collector reading its own records about you (one entry per answer that named you).
    "obligation:read": N_("Read one of your debts"),
    "obligation:versions:read": N_("Read the history of one of your debts"),
    "obligations:list": N_("Listed the debts they report, yours among them"),
    "consents:list": N_("Looked at the consents you gave them"),
    "disputes:list": N_("Listed the disputes on their debts, yours among them"),
    # A creditor handling a dispute you opened (your own steps are on the disputes page, not here).
    "dispute:read": N_("Read your dispute"),
    "dispute:answer": N_("Answered your dispute"),
    "dispute:correct": N_("Corrected a debt you disputed"),
}
OTHER_ACTION = N_("Other use of your data")

OUTCOMES = {
    "granted": ("✓", N_("Allowed")),
    "ok": ("✓", N_("Done")),
    "refused": ("✗", N_("Refused")),
}

REFUSALS = {
    "consent_missing": N_("there was no consent"),
    "consent_mismatch": N_("the consent was for something else"),
    "consent_revoked": N_("you had revoked the consent"),
    "consent_expired": N_("the consent had expired"),
    "rate_limited": N_("they asked too often"),
    "quota_exceeded": N_("they asked too often"),
    "attested_rate_limited": N_("they asked too often"),
    "attested_quota_exceeded": N_("they asked too often"),
    "reference_reused": N_("the application reference belonged to another consent"),
}

SOURCES = {
    "consumer": N_("You gave it here"),
    "attested": N_("Recorded by the lender from an application you signed"),
}

COUNTRIES = {
    "SE": N_("Sweden"),
    "NO": N_("Norway"),
    "FI": N_("Finland"),
    "DK": N_("Denmark"),
    "PL": N_("Poland"),
}

DISPUTE_REASONS = {
    "not_mine": N_("This debt is not mine"),
    "repaid": N_("I have paid it back"),
    "wrong_amount": N_("The amount is wrong"),
    "wrong_status": N_("The status is wrong (for example, I am not late)"),
    "identity_fraud": N_("Someone took it in my name (identity fraud)"),
    "other": N_("Something else is wrong"),
}

# dispute state -> (icon, words)
DISPUTE_STATES = {
    "open": ("?", N_("Waiting for the creditor's answer")),
    "overdue": ("!", N_("The creditor has not answered in time")),
    "corrected": ("✓", N_("Corrected by the creditor")),
    "upheld": ("–", N_("The creditor kept the debt as it was")),
    "withdrawn": ("–", N_("Withdrawn by you")),
}

BAN_REASONS = {
    "identity_theft": N_("My identity was stolen or misused"),
    "self_control": N_("I want to stop myself from borrowing"),
    "other": N_("Another reason"),
}

# What the person's "what we keep" page says of each retention rule: what it keeps, and from when its
# period runs (SPEC.md, "Retention").
RETENTION = {
    "ended": (N_("A debt that ended normally"), N_("from when it was repaid and closed")),
    "ended_arrears": (N_("A debt that ended after late payments"), N_("from when it was repaid and closed")),
    "retracted": (N_("A debt withdrawn as reported in error"), N_("from when it was withdrawn")),
    "claim_closed": (N_("A debt collection case that was closed"), N_("from when it was closed")),
    "exposure_answer": (N_("Each answer a lender got about your debts"), N_("from the answer")),
    "access_event": (N_("Each record of who looked at your data"), N_("from the look; then it no longer names you")),
    "report_file": (N_("A file of debts a creditor sent us"), N_("from when it was processed; its debts stay")),
}

# The public statistics: disputes by state, and persons by how late their latest payments are.
DISPUTE_OUTCOMES = {
    "open": N_("Waiting for the creditor"),
    "overdue": N_("Not answered in time"),
    "corrected": N_("Corrected by the creditor"),
    "upheld": N_("Kept as it was by the creditor"),
    "withdrawn": N_("Withdrawn by the person"),
}
ARREARS_BUCKETS = {
    "current": N_("Not late"),
    "1-30": N_("1–30 days late"),
    "31-60": N_("31–60 days late"),
    "61-90": N_("61–90 days late"),
    "91-180": N_("91–180 days late"),
    "181+": N_("More than 180 days late"),
}

"""What the HA tests measured (unavailability per kill, the postmaster restarted in place), shown at the
end of every run, CI's included: pytest hides a passing test's output, and these figures are the point."""

from __future__ import annotations

FIGURES: list[str] = []


def report(line: str) -> None:
    """Print now (seen with -s) and list it in the run's summary."""
    print("\n" + line)
    FIGURES.append(line)


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    if FIGURES:
        terminalreporter.section("high availability: what was measured")
        for line in FIGURES:
            terminalreporter.write_line(line)

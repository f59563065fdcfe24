"""The isolated grader: student code runs in a limited worker; judgments happen here."""

from .checks import Assignment, Call, Check, CheckResult, Reply, Report, Verdict, REGISTRY, register

__all__ = ["Assignment", "Call", "Check", "CheckResult", "Reply", "Report", "Verdict", "REGISTRY", "register"]

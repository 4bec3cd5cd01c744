"""The sandbox connectors decide from their input, answer a reference the same way twice (a resend after a crash
reaches nobody twice) and keep no phone number in what they record or show."""

from __future__ import annotations

from finloop.credit.collections.connectors import (
    CallOutcome,
    CallRequest,
    SandboxCalls,
    SandboxSms,
    SmsOutcome,
    SmsRequest,
)


def test_the_sandbox_sms_delivers_except_to_numbers_ending_in_zero() -> None:
    sms = SandboxSms()
    ok = sms.send_sms(SmsRequest("rmd_1", "ten_1", "+86 138 0013 8005", "reminder_due", {"loan_id": "loan_1"}))
    bad = sms.send_sms(SmsRequest("rmd_2", "ten_1", "+86 138 0013 8000", "reminder_due", {}))
    assert ok.outcome is SmsOutcome.DELIVERED and ok.provider_reference and ok.provider_reference.startswith("sms_")
    assert (bad.outcome, bad.error_code) == (SmsOutcome.FAILED, "invalid_number")


def test_the_same_reference_is_answered_once() -> None:
    sms = SandboxSms()
    first = sms.send_sms(SmsRequest("cac_1", "ten_1", "13800138005", "collection_m1", {}))
    again = sms.send_sms(SmsRequest("cac_1", "ten_1", "13800138005", "collection_m1", {}))
    assert first == again and len(sms.messages) == 1


def test_the_sandbox_dialer_answers_by_the_last_digit() -> None:
    calls = SandboxCalls()
    outcomes = [calls.place_call(CallRequest(f"cac_{d}", "ten_1", f"1380013800{d}", "collection_m2", {})).outcome
                for d in "12345"]
    assert outcomes == [CallOutcome.NO_ANSWER, CallOutcome.BUSY, CallOutcome.FAILED, CallOutcome.ANSWERED,
                        CallOutcome.ANSWERED]


def test_requests_do_not_show_the_number() -> None:
    request = SmsRequest("rmd_1", "ten_1", "+86 138 0013 8005", "reminder_due", {})
    assert "8005" not in repr(request) and "138" not in repr(request)
    sms = SandboxSms()
    sms.send_sms(request)
    assert "8005" not in repr(sms.messages)

"""Collections on the figures the servicing end of day computes (no account row written by hand): reminders before
and on the first due date, a case opened with an SMS the day after it is missed, a promise kept by a real
repayment, and the case cured by it; then the month-end snapshot filed with the bureau."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from finloop.core.clock import FrozenClock
from finloop.credit.collections import bureau_export, service
from finloop.credit.servicing import eod
from finloop.credit.servicing import service as servicing
from finloop.db.uow import Database
from finloop.payouts.bank_sandbox import SandboxBank
from tests.conftest import TenantHandle
from tests.credit.collections.conftest import Sandboxes, first_due, lending, loan


def test_a_missed_installment_is_reminded_chased_promised_repaid_and_cured(
        db: Database, tenant: TenantHandle, bank: SandboxBank, clock: FrozenClock, sandboxes: Sandboxes) -> None:
    lending(db, tenant.id)
    loan_id = loan(db, tenant.id)
    due = first_due(db, loan_id)
    step = eod.committing(db)

    def day(d: timedelta) -> None:
        """The end of day and the collections run of ``due + d``, with the clock just after it closed."""
        business_date = due + d
        clock.set(datetime.combine(business_date + timedelta(days=1), time(0, 5), tzinfo=clock.now().tzinfo))
        eod.run_through(step, tenant.id, business_date)
        service.run_day(db, tenant.id, business_date)

    for offset in range(-5, 0):
        day(timedelta(days=offset))
    with db.uow(read_only=True) as uow:
        assert [(r.kind, r.due_on, r.sms_status) for r in service.list_reminders(uow, tenant.id)] == [
            ("upcoming", due, "sent"), ("due", due, "sent")]
        assert service.list_cases(uow, tenant.id) == []
    day(timedelta(days=0))
    day(timedelta(days=1))
    with db.uow(read_only=True) as uow:
        account = servicing.get_account(uow, tenant.id, loan_id)
        assert (account.state, account.dpd, account.bucket) == ("overdue", 1, "M1")
        case = service.list_cases(uow, tenant.id)[0]
        assert (case.status, case.dpd, case.overdue_amount) == ("open", 1, servicing.amount_due(uow, tenant.id,
                                                                                                  loan_id))
        owed, case_id = servicing.amount_due(uow, tenant.id, loan_id), case.id
    assert [t for _, t, _ in sandboxes.sms.messages][-1] == "collection_m1"
    with db.uow() as uow:
        service.promise(uow, tenant.id, case_id, amount=owed, promised_on=due + timedelta(days=3), actor="test")
        uow.commit()
    with db.uow() as uow:
        servicing.repay(uow, tenant.id, loan_id, amount=owed, reference="bank-1", actor="test")
        uow.commit()
    day(timedelta(days=2))
    with db.uow(read_only=True) as uow:
        assert service.get_case(uow, tenant.id, case_id).status == "cured"
        assert [p.status for p in service.list_promises(uow, tenant.id)] == ["kept"]

    # Through the month's end: its snapshot is filed with the bureau by the next run.
    month_end = (due.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    day(month_end - due + timedelta(days=1))
    cycle = f"{month_end.year:04d}-{month_end.month:02d}"
    with db.uow() as uow:
        made = bureau_export.export_cycle(uow, tenant.id, cycle, actor="test")
        uow.commit()
    record = made.content.splitlines()[1].split(",")
    assert (record[1], record[10], record[11]) == (loan_id, "M0", "0")

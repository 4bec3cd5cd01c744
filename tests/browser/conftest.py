"""Browser tests: the console served by uvicorn on a free local port, driven in Debian's Chromium by Playwright.

One SQLite file database per session is filled by the demo (small numbers: about 15 s) plus what the
browser tests act on: staff users of every role, a refund threshold on the demo merchant, a sandbox
channel for customer (QR and browser) payments and one for cards, talked to in-process. Chromium is not
optional: without it these tests fail and say how to install it. Screenshots are kept in
``artifacts/screenshots/`` at the repository root.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from rich.console import Console

from finloop.config import Settings, get_settings
from finloop.core.clock import SystemClock
from finloop.db.uow import Database
from finloop.payments import flows, gateway
from finloop.payments import service as payments
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.payments.models import Merchant
from finloop.tenancy import service as tenancy
from finloop.vault import crypto
from finloop.vault import service as vault

CHROMIUM = Path("/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"
#: The staff who sign in, by name, and their role: two risk analysts, since one asks and the other approves.
STAFF = {"admin": "admin", "finance": "finance", "support": "support", "risk_analyst": "risk_analyst",
         "risk_checker": "risk_analyst", "auditor": "auditor"}
#: Refunds of the demo merchant above CNY 50.00 wait for a finance user's approval.
REFUND_THRESHOLD = 5_000
#: Customer payments (QR code, browser redirect) and card payments, each on a channel of its own.
CUSTOMER_CHANNEL = "quickpay"
CARD_CHANNEL = "cardnet"
SANDBOX_CHANNELS = {CUSTOMER_CHANNEL: "generic", CARD_CHANNEL: "generic"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@dataclass
class StaffUser:
    role: str
    email: str
    user_id: str
    #: Set at the first sign-in, when the second-factor page shows it.
    secret: str | None = None
    #: The last 30-second step whose code was used: a code is accepted once, and never an earlier one.
    last_step: int = -1


@dataclass
class World:
    base_url: str
    db: Database
    sandbox: InProcessSandbox
    tenant_id: str
    merchant_id: str
    card_id: str
    staff: dict[str, StaffUser]
    demo_seconds: float
    notes: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base_url + path

    def deliver_notifications(self) -> int:
        """Send every notification the sandbox has queued to the live server, as the channels would."""
        with httpx.Client(timeout=10) as client:
            return self.sandbox.deliver_notifications(client, now=datetime.now(UTC) + timedelta(minutes=10))


# ------------------------------------------------------------------------------------------ the server


@pytest.fixture(scope="session")
def master_key() -> Iterator[crypto.MasterKey]:
    key = crypto.MasterKey.generate()
    crypto.use_master_key(key)
    vault._cache.clear()
    yield key
    crypto.use_master_key(None)
    vault._cache.clear()


@pytest.fixture(autouse=True)
def _vault_master_key(master_key: crypto.MasterKey) -> Iterator[None]:
    """Replaces the per-test key of tests/conftest.py: the server, the demo's sealed channel credentials and
    the staff's TOTP secrets all live for the whole session under one key."""
    crypto.use_master_key(master_key)
    yield


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _seed(db: Database, sandbox: InProcessSandbox, tenant_id: str) -> tuple[str, str, dict[str, StaffUser]]:
    """What the demo does not make: staff users, a refund threshold, customer and card channels, a card."""
    with db.uow() as uow:
        merchant = uow.session.query(Merchant).filter_by(tenant_id=tenant_id, reference="demo-shop").one()
        payments.set_refund_approval_amount(uow, tenant_id, merchant.id, REFUND_THRESHOLD, actor="browser-tests")
        for code, methods in ((CUSTOMER_CHANNEL, ["qr", "h5"]), (CARD_CHANNEL, ["card"])):
            config = sandbox.config(code)
            payments.create_channel(uow, tenant_id, code=code, provider=config.provider, base_url=config.base_url,
                                    methods=methods, currencies=["CNY"], fee_rate=Decimal("0.006"),
                                    settings=dict(config.settings), credentials=dict(config.credentials))
        card = vault.tokenize_card(uow, tenant_id, number="4242424242424242", exp_month=12, exp_year=2031)
        staff = {}
        for name, role in STAFF.items():
            email = f"{name.replace('_', '-')}@demo.example"
            user = tenancy.create_user(uow, tenant_id, email=email, password=PASSWORD, roles=[role],
                                       name=name.replace("_", " ").title(), actor="browser-tests")
            staff[name] = StaffUser(role, email, user.id)
        uow.commit()
        return merchant.id, card.id, staff


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Checked before anything is built: a machine without the browser fails at once, saying what to do."""
    if not CHROMIUM.exists():
        pytest.fail(f"The browser tests drive Debian's Chromium at {CHROMIUM}, which is missing: install it "
                    "with `apt-get install -y chromium` (never `playwright install`).", pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="session")
def world(chromium: Path, master_key: crypto.MasterKey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from finloop.app import create_app
    from finloop.sim.demo import run_demo

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    database_url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'finloop.db'}"
    settings = Settings(database_url=database_url, public_url=base_url, log_level="WARNING")
    started = time.perf_counter()
    summary = run_demo(settings, Console(quiet=True), orders=50, payments=60, daily_payments=10,
                       risk_training_days=2, risk_training_customers=40, risk_traffic_days=1,
                       risk_traffic_customers=40, credit_applications=3, credit_months=1,
                       credit_monthly_applications=2)
    demo_seconds = time.perf_counter() - started
    # Channels are told where to notify from the process-wide settings: the live server's address.
    saved = os.environ.get("FINLOOP_PUBLIC_URL")
    os.environ["FINLOOP_PUBLIC_URL"] = base_url
    get_settings.cache_clear()
    tenant_id = str(summary["tenant_id"])
    db = Database(database_url, clock=SystemClock(), busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    sandbox = InProcessSandbox(SystemClock(), seed=11, channels=SANDBOX_CHANNELS)
    for code in SANDBOX_CHANNELS:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), customer_pays_share=Decimal(1),
                                                      latency_ms=(5, 10, 20)))
    with gateway.use_http_client(sandbox.client):
        merchant_id, card_id, staff = _seed(db, sandbox, tenant_id)
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                               log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, name="browser-tests-uvicorn", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start on {base_url}")
            time.sleep(0.05)
        try:
            yield World(base_url, db, sandbox, tenant_id, merchant_id, card_id, staff, demo_seconds)
        finally:
            server.should_exit = True
            thread.join(timeout=15)
            db.dispose()
            if saved is None:
                os.environ.pop("FINLOOP_PUBLIC_URL", None)
            else:
                os.environ["FINLOOP_PUBLIC_URL"] = saved
            get_settings.cache_clear()


# ------------------------------------------------------------------------------------------ the browser


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright, chromium: Path) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """``new_page()`` opens a page in a browser context of its own (its own cookies: one person each);
    keyword arguments go to the context (``viewport=``, ``is_mobile=``...). Every dialog is accepted."""
    contexts: list[BrowserContext] = []

    def open_page(**options: Any) -> Page:
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        return page

    yield open_page
    for context in contexts:
        context.close()


def _code(user: StaffUser) -> str:
    """A code for a step after the last one used: now's, or the next one (accepted a step early)."""
    assert user.secret is not None
    totp = pyotp.TOTP(user.secret)
    now_step = int(time.time()) // totp.interval
    step = max(now_step, user.last_step + 1)
    while step > now_step + 1:
        time.sleep(1)
        now_step = int(time.time()) // totp.interval
    user.last_step = step
    return totp.at(step * totp.interval)


def sign_in(page: Page, world: World, role: str) -> StaffUser:
    """Sign in through the real pages: password, then the second factor (enrolling at the first sign-in)."""
    user = world.staff[role]
    page.goto(world.url("/console/sign-in"))
    page.fill("input[name=tenant_id]", world.tenant_id)
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/sign-in/second-factor")
    shown = page.locator("[data-totp-secret]")
    if shown.count():
        user.secret = shown.inner_text().strip()
    page.fill("input[name=code]", _code(user))
    page.click("button[type=submit]")
    page.wait_for_url(world.url("/console"))
    assert page.locator("[data-error-code]").count() == 0
    return user


def make_card_payment(world: World, amount: int, order_reference: str) -> str:
    """A captured card payment of the demo merchant on the card channel."""
    with world.db.uow() as uow:
        payment = payments.create_payment(uow, world.tenant_id, payments.PaymentDraft(
            merchant_id=world.merchant_id, amount=amount, currency="CNY", order_reference=order_reference,
            method="card", card_id=world.card_id))
        uow.commit()
        payment_id = payment.id
    flows.confirm_payment(world.db, world.tenant_id, payment_id, only_channels=[CARD_CHANNEL])
    return payment_id

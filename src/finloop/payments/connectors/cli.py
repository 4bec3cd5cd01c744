"""`finloop sandbox` commands: serve the simulated payment providers over HTTP, show their channel configs.

Invariants owned here: ``serve`` runs in realtime (system clock, latency slept, notifications sent by a
background thread) and is deterministic for a seed only up to request arrival order; the printed
credentials are the sandbox's fixed public test values, never real secrets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

sandbox_app = typer.Typer(help="The sandbox payment providers.", no_args_is_help=True)
console = Console(emoji=False, highlight=False)

#: The channels served when no --channel is given (those whose provider has a sandbox).
DEFAULT_CHANNELS = {"unionpay": "generic", "paypal": "generic", "wxpay": "wechat", "alipay": "alipay",
                    "stripe": "stripe"}


def _channels(specs: list[str]) -> dict[str, str]:
    from finloop.payments.connectors.sandbox.provider import available_providers

    if not specs:
        available = set(available_providers())
        return {channel: provider for channel, provider in DEFAULT_CHANNELS.items() if provider in available}
    channels: dict[str, str] = {}
    for spec in specs:
        channel, sep, provider = spec.partition("=")
        if not sep or not channel or not provider:
            raise typer.BadParameter(f"{spec!r}: use CHANNEL=PROVIDER, e.g. unionpay=generic", param_hint="--channel")
        if channel in channels:
            raise typer.BadParameter(f"channel {channel!r} given twice", param_hint="--channel")
        channels[channel] = provider
    return channels


def _config_json(channel: str, provider_name: str, base_url: str) -> dict[str, Any]:
    from finloop.payments.connectors.sandbox.provider import sandbox_provider

    config = sandbox_provider(provider_name).channel_config(channel, base_url)
    return {"code": config.code, "provider": config.provider, "base_url": config.base_url,
            "settings": dict(config.settings), "credentials": dict(config.credentials),
            "timeout_seconds": config.timeout_seconds}


@sandbox_app.command("providers")
def providers() -> None:
    """List the providers that have a sandbox."""
    from finloop.payments.connectors.sandbox.provider import available_providers

    for name in available_providers():
        console.print(name)


@sandbox_app.command("config")
def config(channel: list[str] = typer.Option([], "--channel", help="CHANNEL=PROVIDER (repeatable)."),
           base_url: str = typer.Option("http://127.0.0.1:8700", help="Where the sandbox is served."),
           ) -> None:
    """Print, as JSON, the channel configurations that match a sandbox served at BASE_URL."""
    try:
        configs = [_config_json(name, provider, f"{base_url.rstrip('/')}/{name}")
                   for name, provider in _channels(channel).items()]
    except LookupError as error:
        raise typer.BadParameter(str(error), param_hint="--channel") from error
    typer.echo(json.dumps(configs, indent=2))


@sandbox_app.command("serve")
def serve(host: str = typer.Option("127.0.0.1", help="Interface to bind."),
          port: int = typer.Option(8700, help="TCP port."),
          channel: list[str] = typer.Option([], "--channel",
                                            help="CHANNEL=PROVIDER, repeatable, e.g. --channel unionpay=generic "
                                                 "--channel wxpay=wechat (default: every provider with a sandbox)."),
          seed: int = typer.Option(0, help="Seed of the simulated outcomes."),
          public_url: str = typer.Option("", help="Base URL clients use, when not http://HOST:PORT."),
          config_out: Path | None = typer.Option(None, help="Also write the channel configs to this JSON file."),
          notify_interval: float = typer.Option(0.5, help="Seconds between notification deliveries."),
          hang_seconds: float = typer.Option(30.0, help="How long a simulated timeout holds the reply."),
          ) -> None:
    """Serve the sandbox providers in real time until Ctrl-C."""
    import httpx
    import uvicorn

    from finloop.core.clock import SystemClock
    from finloop.payments.connectors.sandbox.app import build_sandbox_app
    from finloop.payments.connectors.sandbox.engine import SandboxEngine
    from finloop.payments.connectors.sandbox.notifier import NotifierThread
    from finloop.payments.connectors.sandbox.provider import SandboxProvider, sandbox_provider

    names = _channels(channel)
    if not names:
        raise typer.BadParameter("no provider has a sandbox", param_hint="--channel")
    try:
        providers: dict[str, SandboxProvider] = {name: sandbox_provider(p) for name, p in names.items()}
    except LookupError as error:
        raise typer.BadParameter(str(error), param_hint="--channel") from error
    base = (public_url or f"http://{host}:{port}").rstrip("/")
    engine = SandboxEngine(SystemClock(), seed=seed, realtime=True)
    notify_client = httpx.Client(timeout=10.0)
    app = build_sandbox_app(engine, providers, notify_client=notify_client, timeout_hang_seconds=hang_seconds)

    configs = [_config_json(name, names[name], f"{base}/{name}") for name in providers]
    console.print(f"[bold]finloop sandbox[/bold] on {base} (seed {seed}); control API at {base}/_control, "
                  f"OpenAPI at {base}/docs")
    for item in configs:
        console.print(f"  [bold]{item['code']}[/bold] ({item['provider']}): {item['base_url']}")
    console.print("Channel configurations (sandbox test credentials) to register with finloop:")
    typer.echo(json.dumps(configs, indent=2))
    if config_out is not None:
        config_out.write_text(json.dumps(configs, indent=2) + "\n")
        console.print(f"written to {config_out}")

    notifier = NotifierThread(engine, providers, notify_client, interval=notify_interval)
    notifier.start()
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        notifier.stop()
        notifier.join(timeout=5)
        notify_client.close()

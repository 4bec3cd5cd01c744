"""The sandbox: simulated providers speaking their own wire, served by `finloop sandbox serve`.

``engine`` holds every channel's state and decisions; ``provider`` defines what a provider's sandbox
supplies; ``app`` mounts them (plus the ``/_control`` API) and offers ``InProcessSandbox`` for tests and
the demo; ``notifier`` sends the due notifications. See docs/sandbox.md.
"""

"""The config the console tests serve: names holding markup, an admin key and one that is not."""

from __future__ import annotations

ADMIN_KEY = "sk-router-root-CANARY-9999"
# Rule and model names a config may hold: the console must show them as text.
MARKUP_RULE = "<b>x</b>"
MARKUP_MODEL = "<img src=x onerror=alert(1)>"


def console_config(
    base_url: str, *, keys: bool = True, log_text: bool = False, usage_db: str = ":memory:"
) -> str:
    server = ""
    if keys:
        server = (
            "server:\n"
            "  keys:\n"
            "    - {key: '${ADMIN_KEY}', name: root, admin: true}\n"
            "    - {key: '${BOB_KEY}', name: bob}\n"
        )
    log = f"{{path: requests.jsonl, log_text: {'true' if log_text else 'false'}}}"
    return f"""\
providers:
  fake: {{type: litellm, api_base: '{base_url}', api_key: '${{FAKE_KEY}}', timeout: 10,
          retries: 0}}
models:
  fast:
    provider: fake
    model: openai/gpt-4o-mini
    context: 16000
    cost: {{input: 1.0, output: 2.0}}
  backup:
    provider: fake
    model: openai/backup-model
    context: 16000
    cost: {{input: 0.5, output: 1.0}}
  tiny:  # too small for any prompt with its max_tokens: the trace shows it dropped
    provider: fake
    model: openai/tiny-model
    context: 16
    cost: {{input: 0.1, output: 0.1}}
  '{MARKUP_MODEL}':
    provider: fake
    model: openai/markup-model
    context: 16000
    cost: {{input: 0.5, output: 1.0}}
rules:
  - {{name: '{MARKUP_RULE}', when: {{use_case: markup}}, targets: ['{MARKUP_MODEL}']}}
  - {{name: coding, when: {{use_case: coding}}, targets: [fast, tiny, backup]}}
  - {{name: default, targets: [fast], cache: {{ttl: 600}}}}
budgets:
  global: {{daily: 5}}
tests:
  - {{prompt: 'Say hi', expect: {{model: fast}}}}
  - {{prompt: 'Fix this loop', use_case: coding, expect: {{rule: coding}}}}
settings: {{usage_db: '{usage_db}', request_log: {log}, debounce_ms: 100}}
{server}"""

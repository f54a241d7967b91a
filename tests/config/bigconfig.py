"""A large, valid config (1,000 rules over 100 models) for load-speed checks."""

from __future__ import annotations


def big_config_yaml(n_rules: int = 1000, n_models: int = 100) -> str:
    out = [
        "providers:",
        '  openai: {type: litellm, api_key: "${OPENAI_API_KEY:-}", timeout: 60, retries: 2}',
        '  local: {type: llama_cpp, models_dir: "${MODELS_DIR:-~/.cache/router/models}"}',
        "  echo: {type: mock}",
        "models:",
    ]
    providers = ["openai", "local", "echo"]
    for i in range(n_models):
        out += [
            f"  m{i}:",
            f"    provider: {providers[i % 3]}",
            f"    model: vendor/model-{i}",
            f"    context: {8192 * (1 + i % 16)}",
            f"    cost: {{input: {0.1 * (i % 7):.2f}, output: {0.3 * (i % 5):.2f}}}",
            "    capabilities: [tools, json]",
            f"    latency_ms: {100 + i}",
        ]
    out.append("use_cases:")
    for j in range(20):
        out.append(
            f"  uc{j}: {{matches: '(?i)\\b(word{j}|term{j})\\b', contains: [k{j}, 'phrase {j}']}}"
        )
    out.append("rules:")
    for r in range(n_rules - 1):
        a, third = r % n_models, max(n_models // 3, 1)  # three distinct models
        b, c = (a + 1 + r % third) % n_models, (a + third + 1 + r % third) % n_models
        out += [
            f"  - name: rule-{r}",
            "    when:",
            f"      use_case: [uc{r % 20}, other{r}]",
            f"      tokens: {{gt: {r * 10}, lte: {r * 10 + 50000}}}",
        ]
        if r % 3 == 0:
            out.append(f"      any: [{{matches: '(?i)topic{r}'}}, {{contains: [w{r}]}}]")
        if r % 5 == 0:
            out.append(f"      not: {{tags: [skip{r}]}}")
        out += [
            f"    targets: [m{a}, m{b}, m{c}]",
            "    strategy: " + ("ordered", "cheapest", "fastest")[r % 3],
            f"    max_cost: {0.01 + r / 100000:.5f}",
            "    params: {temp: 0.2, max_new_tokens: 512}",
            "    system: \"You are a careful {{ language | default('Python') }} engineer.\"",
        ]
    out += ["  - name: default", "    targets: [m0, m1]"]
    out.append("tests:")
    for t in range(20):
        out.append(f"  - {{prompt: 'about word{t}', use_case: uc{t}, expect: {{rule: rule-{t}}}}}")
    return "\n".join(out) + "\n"

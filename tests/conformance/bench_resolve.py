"""Side-by-side resolver benchmark, LiteLLM's half (see scripts/bench-vs-litellm.sh).

Generates policy sets shaped like real repositories (baselines, inheritance chains up to 5 deep,
model conditions, attachments by team prefix, key, tag and model with priorities and defaults),
times LiteLLM 1.110.2's resolution of one request (matched policies with reasons, then the
effective guardrails, as /policies/resolve does), and writes the sets, requests, LiteLLM's
answers and its time per request to a JSON file for the Rust half.

Usage: python bench_resolve.py OUT_JSON [N ...]
"""
import json
import os
import sys
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from litellm.proxy.policy_engine.attachment_registry import AttachmentRegistry  # noqa: E402
from litellm.proxy.policy_engine.policy_matcher import PolicyMatcher  # noqa: E402
from litellm.proxy.policy_engine.policy_registry import PolicyRegistry  # noqa: E402
from litellm.proxy.policy_engine.policy_resolver import PolicyResolver  # noqa: E402
from litellm.types.proxy.policy_engine import PolicyMatchContext  # noqa: E402


def repository(n):
    policies, attachments = {}, []
    for i in range(n):
        name = f"p{i:05d}"
        body = {"guardrails": {"add": [f"g{i % 40}", f"g{(i * 7) % 40}"], "remove": [f"g{(i * 3) % 40}"]}}
        if i % 5 != 0:
            body["inherit"] = f"p{i - 1:05d}"
        if i % 11 == 0:
            body["condition"] = {"model": ["gpt-4o", "claude-.*"]}
        policies[name] = body
        k = i % 6
        if k == 0:
            att = {"policy": name, "teams": [f"team-{i % 50}-*"]}
        elif k == 1:
            att = {"policy": name, "keys": [f"key-{i}"], "priority": i % 7}
        elif k == 2:
            att = {"policy": name, "tags": ["external", f"tag-{i % 30}-*"]}
        elif k == 3:
            att = {"policy": name, "models": ["gpt-*"], "teams": [f"team-{i % 50}"]}
        elif k == 4:
            att = {"policy": name, "scope": "*" if i % 1000 == 4 else "none"}
        else:
            att = {"policy": name, "default": i % 500 == 5, "models": [f"model-{i % 20}"]}
        attachments.append(att)
    return policies, attachments


def contexts():
    out = []
    for j in range(20):
        out.append({
            "team_alias": f"team-{j % 50}-research" if j % 3 else f"team-{j}",
            "key_alias": f"key-{j * 13}",
            "model": ["gpt-4o", "claude-3", "model-3", None][j % 4],
            "tags": ["external"] if j % 2 else None,
        })
    return out


def main():
    out_path = sys.argv[1]
    sizes = [int(x) for x in sys.argv[2:]] or [10, 100, 1000, 10000]
    sets = []
    for n in sizes:
        raw_policies, raw_atts = repository(n)
        reg = PolicyRegistry()
        reg.load_policies(raw_policies)
        policies = reg.get_all_policies()
        atts = AttachmentRegistry()
        atts.load_attachments(raw_atts)
        ctxs = contexts()

        def resolve(c):
            ctx = PolicyMatchContext(**c)
            matched = atts.get_attached_policies_with_reasons(ctx, PolicyMatcher.policy_applies(ctx, policies))
            names = [m["policy_name"] for m in matched]
            effective = PolicyResolver.resolve_guardrails_for_context(ctx, policies=policies, policy_names=names) if names else []
            return names, sorted(effective)

        expected = [{"matched": m, "effective": e} for m, e in (resolve(c) for c in ctxs)]
        rounds, start = 0, time.perf_counter()
        while time.perf_counter() - start < 2.0 or rounds < 1:
            for c in ctxs:
                resolve(c)
            rounds += 1
        per_request = (time.perf_counter() - start) / (rounds * len(ctxs))
        sets.append({"n": n, "policies": raw_policies, "attachments": raw_atts, "contexts": ctxs,
                     "expected": expected, "litellm_per_request_seconds": per_request})
        print(f"litellm n={n}: {per_request * 1e6:.1f} us/request", file=sys.stderr)
    with open(out_path, "w") as f:
        json.dump({"litellm_version": "1.110.2", "sets": sets}, f)


if __name__ == "__main__":
    main()

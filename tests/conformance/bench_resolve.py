"""Side-by-side resolver benchmark, LiteLLM's half (see scripts/bench-vs-litellm.sh).

Generates policy sets in two shapes, times LiteLLM 1.110.2 on each:

* "realistic": what a platform team's repository looks like. Attachments name exact teams, keys,
  tags and models (a tenth by an org prefix wildcard plus a model), one global baseline, one
  default; chains of two under a baseline every fourth policy; a model condition on every 13th.
  A request matches a handful of policies at every size (about 3-10).
* "broad": the earlier generated shape, where about a sixth of all attachments have no
  dimension and match every request (at 10,000, ~1,700 policies per answer).

For each it
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


MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3-70b"]


def realistic(n):
    orgs = max(n // 80, 2)
    teams, tags = orgs * 10, max(n // 20, 3)
    policies, attachments = {}, []
    for i in range(n):
        name = f"p{i:05d}"
        body = {"guardrails": {"add": [f"g{i % 40}", f"g{(i * 7) % 40}"]}}
        if i % 4 != 0:
            body["inherit"] = f"p{(i // 4) * 4:05d}"
            body["guardrails"]["remove"] = [f"g{(i * 3) % 40}"]
        if i % 13 == 0:
            body["condition"] = {"model": ["gpt-4o.*", "claude-.*"]}
        policies[name] = body
        k = i % 10
        if k < 4:
            att = {"policy": name, "teams": [f"org-{i % orgs}-team-{i % teams}"]}
        elif k < 6:
            att = {"policy": name, "keys": [f"key-{i}"]}
        elif k < 8:
            att = {"policy": name, "tags": [f"app-{i % tags}"]}
        elif k == 8:
            att = {"policy": name, "teams": [f"org-{i % orgs}-*"], "models": [MODELS[i % 4]]}
        else:
            att = {"policy": name, "teams": [f"org-{i % orgs}-team-{i % teams}"], "models": [MODELS[i % 4]], "priority": i % 3}
        attachments.append(att)
    attachments.append({"policy": "p00000", "scope": "*"})
    attachments.append({"policy": f"p{min(4, n - 1):05d}", "default": True})
    return policies, attachments


def realistic_contexts(n):
    orgs = max(n // 80, 2)
    teams, tags = orgs * 10, max(n // 20, 3)
    out = []
    for j in range(20):
        t = (j * 37) % teams
        out.append({
            "team_alias": f"org-{t % orgs}-team-{t}",
            "key_alias": f"key-{(j * 53) % n}",
            "model": None if j % 5 == 4 else MODELS[j % 4],
            "tags": [f"app-{(j * 11) % tags}"] if j % 2 else None,
        })
    return out


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
    for shape, n in [(shape, n) for shape in ("realistic", "broad") for n in sizes]:
        raw_policies, raw_atts = realistic(n) if shape == "realistic" else repository(n)
        reg = PolicyRegistry()
        reg.load_policies(raw_policies)
        policies = reg.get_all_policies()
        atts = AttachmentRegistry()
        atts.load_attachments(raw_atts)
        ctxs = realistic_contexts(n) if shape == "realistic" else contexts()

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
        matched = sum(len(e["matched"]) for e in expected) / len(expected)
        sets.append({"n": n, "shape": shape, "matched_per_request": matched, "policies": raw_policies, "attachments": raw_atts, "contexts": ctxs,
                     "expected": expected, "litellm_per_request_seconds": per_request})
        print(f"litellm {shape} n={n}: {per_request * 1e6:.1f} us/request, {matched:.1f} matched", file=sys.stderr)
    with open(out_path, "w") as f:
        json.dump({"litellm_version": "1.110.2", "sets": sets}, f)


if __name__ == "__main__":
    main()

"""Load a gateway bundle (policies.yaml) with litellm 1.110.2's own loader and resolve requests.

Usage: python load_bundle.py POLICIES_YAML CONTEXTS_JSON OUT_JSON
Writes JSON (stdout is left to LiteLLM's logging): [{"matched": [{"policy_name", "matched_via"}], "effective_guardrails": [...]}] per
context. `init_policies` runs with fail_on_error=True, as the proxy does at start-up, so a bundle
LiteLLM would refuse makes this script fail.
"""
import asyncio
import json
import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import yaml  # noqa: E402  (installed with litellm)

from litellm.proxy.policy_engine.attachment_registry import get_attachment_registry  # noqa: E402
from litellm.proxy.policy_engine.init_policies import init_policies  # noqa: E402
from litellm.proxy.policy_engine.policy_matcher import PolicyMatcher  # noqa: E402
from litellm.proxy.policy_engine.policy_registry import get_policy_registry  # noqa: E402
from litellm.proxy.policy_engine.policy_resolver import PolicyResolver  # noqa: E402
from litellm.types.proxy.policy_engine import PolicyMatchContext  # noqa: E402


def main() -> None:
    with open(sys.argv[1]) as f:
        config = yaml.safe_load(f)
    with open(sys.argv[2]) as f:
        contexts = json.load(f)
    get_policy_registry().clear()
    get_attachment_registry().clear()
    asyncio.run(
        init_policies(
            policies_config=config.get("policies") or {},
            policy_attachments_config=config.get("policy_attachments") or [],
            fail_on_error=True,
        )
    )
    policies = get_policy_registry().get_all_policies()
    out = []
    for c in contexts:
        ctx = PolicyMatchContext(**c)
        matched = get_attachment_registry().get_attached_policies_with_reasons(
            ctx, PolicyMatcher.policy_applies(ctx, policies)
        )
        names = [m["policy_name"] for m in matched]
        effective = PolicyResolver.resolve_guardrails_for_context(ctx, policies=policies, policy_names=names) if names else []
        out.append({"matched": [dict(m) for m in matched], "effective_guardrails": sorted(effective)})
    with open(sys.argv[3], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()

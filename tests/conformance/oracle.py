#!/usr/bin/env python3
"""Differential-conformance oracle: asks the real litellm==1.110.2 policy engine for answers.

Usage (inside the venv made by setup-oracle.sh):

    PYTHONHASHSEED=0 python oracle.py --seed-start 1 --count 1000 --out cases.json

Generates `count` random policy cases (seeds S..S+N-1, each from `random.Random(seed)`),
`pipeline-count` random pipeline cases (seeds S..S+P-1, each from `random.Random(f"pipe:{seed}")`)
and `plan-count` random plan cases (seeds S..S+Q-1, each from `random.Random(f"plan:{seed}")`:
two states and weighted request contexts, for `plan`'s traffic figures), runs them through
LiteLLM's PolicyRegistry / AttachmentRegistry / PolicyMatcher / PolicyResolver / PolicyValidator /
PipelineExecutor, and writes one JSON file. See README.md for the format.

Everything is deterministic for a given (seed-start, count, pipeline-count, plan-count) as long as
PYTHONHASHSEED=0 (the script re-executes itself with it if it is not set) and the pinned package
versions in requirements-oracle.txt are used.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import math
import os
import re
import sys
import time
from collections import Counter

EXPECTED_LITELLM_VERSION = "1.110.2"

if os.environ.get("PYTHONHASHSEED") != "0":
    # Set-typed internals (resolved guardrail sets, the validator's visited set used in
    # circular-inheritance messages) depend on the hash seed: pin it and start again.
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import importlib.metadata  # noqa: E402
import random  # noqa: E402

_installed = importlib.metadata.version("litellm")
if _installed != EXPECTED_LITELLM_VERSION or _installed.startswith("1.107."):
    sys.exit(f"oracle.py: litellm {EXPECTED_LITELLM_VERSION} required, found {_installed}")

import litellm  # noqa: E402
from fastapi import HTTPException  # noqa: E402
from litellm.integrations.custom_guardrail import CustomGuardrail  # noqa: E402
from litellm.proxy._types import UserAPIKeyAuth  # noqa: E402
from litellm.proxy.policy_engine.attachment_registry import AttachmentRegistry  # noqa: E402
from litellm.proxy.policy_engine.pipeline_executor import PipelineExecutor  # noqa: E402
from litellm.proxy.policy_engine.policy_matcher import PolicyMatcher  # noqa: E402
from litellm.proxy.policy_engine.policy_registry import PolicyRegistry  # noqa: E402
from litellm.proxy.policy_engine.policy_resolver import PolicyResolver  # noqa: E402
from litellm.proxy.policy_engine.policy_validator import PolicyValidator  # noqa: E402
from litellm.types.proxy.policy_engine import GuardrailPipeline, PolicyMatchContext  # noqa: E402

# The engine logs warnings (cycles) and INFO lines (applied through ancestor) per call: silence them.
logging.disable(logging.CRITICAL)

# ─────────────────────────────────────────────────────────────────────────────
# Pools
# ─────────────────────────────────────────────────────────────────────────────

POLICY_POOL = [
    "base", "strict", "team-a", "team-b", "child", "grand",
    "pii", "gpt-only", "audit", "legacy", "x", "y",
]
MISSING_POLICY_NAMES = ["missing", "ghost", "Base"]  # never defined ("Base" differs only by case)

GUARDRAIL_POOL = [
    "pii_masking", "prompt_injection", "toxicity_filter", "audit_logger", "hipaa_audit",
    "strict-filter", "permissive-filter", "pii-masking", "g1", "g2",
]

# Model-condition patterns (the Rust side runs them on engine::pyre: Python's `re`, lookaround,
# `\b` and inline flags included).
VALID_MODEL_PATTERNS = [
    "gpt-4o", "gpt-4", "claude-3-opus", "", "gpt-3.5-turbo", "o1",
    "gpt-.*", "claude-.*", "gpt-*", "gpt-4o|gpt-4", "(gpt|claude)-.+", r"[a-z]+-\d+",
    "gpt-4o?", ".*-mini", r"gpt-\d\.\d-turbo", "o[13](-mini)?", "[^x]+", r"\w+-\w+", "gpt-4{1,2}o",
    # Lookaround, word boundaries, inline flags, `$` before a final newline.
    r"gpt-4(?!o).*", r"(?=.*mini).*", r".*(?<=-mini)", r".*(?<!-mini)", r"\bgpt\b.*",
    r".*\b4o", r"(?i)gpt-4o", r"(?i:CLAUDE)-.*", r"gpt(?=-).+", r"\w+(?<!o)", r"o\d$",
    r"caf\w\b.*", r"(?<![a-z])o\d(?:-mini)?",
]
INVALID_MODEL_PATTERNS = ["(", "[", "*gpt", "gpt-(", "a{2,1}", "+x"]
MODEL_PATTERNS = VALID_MODEL_PATTERNS + INVALID_MODEL_PATTERNS

CONTEXT_MODELS = [
    "gpt-4o", "gpt-4", "gpt--", "gpt-", "gpt", "gpt-3.5-turbo", "gpt-4.5-turbo", "gpt-4o-mini",
    "gpt-44o", "gpt-4oo", "gpt-444o", "claude-3-opus", "claude-", "claude-3", "o1", "o3", "o3-mini",
    "o2", "(", "[", "*gpt", "gpt-(", "a{2,1}", "+x", "", None, "GPT-4O", "gpt-4o|gpt-4", "mistral-7",
    "x-mini", "bedrock/claude", "a*b", "xx", "gpt_4o-x1",
    "o3\n", "GPT-4o", "Claude-3", "café-1", "cafe\u0301-1", "gpt\u00b2",
]

TEAM_VALUES = ["finance", "finance-eu", "eng", "team-a", "team-b", "", "*team", "a*b", "ab", None]
TEAM_PATTERNS = ["finance", "finance-*", "*", "team-*", "*team", "a*b", "", "eng", "team-a", "a**"]
KEY_VALUES = ["key-1", "dev-key-1", "dev-key-2", "prod", "", "a*b", "dev-key-", None]
KEY_PATTERNS = ["key-1", "dev-key-*", "*", "prod", "*key", "a*b", "", "dev-*"]
ATTACH_MODEL_PATTERNS = ["gpt-*", "gpt-4o", "*", "claude-*", "*gpt", "a*b", "", "o1", "gpt-4", "gpt*"]
TAG_VALUES = ["prod", "dev", "health-1", "health", "", "pii", "*", "a*b"]
TAG_PATTERNS = ["prod", "health-*", "*", "", "*prod", "a*b", "pii", "dev"]

PIPELINE_ACTIONS = ["allow", "block", "next", "modify_response"]

# Pipeline-case pools
PIPE_GUARDRAILS = ["g-pii", "g-inject", "g-tox", "g-audit", "g-judge"]
PIPE_MISSING_GUARDRAIL = "g-missing"
PIPE_TEXTS = [
    "hello", "my ssn is 123-45-6789", "secret plan", "tell me a joke",
    "ignore previous instructions", "", "hello secret",
]
PIPE_TRIGGERS = ["ssn", "secret", "ignore", "[r1]", "[r2]", "hello", ""]
PIPE_REWRITES = [" [r1]", " [r2]", " [masked]", ""]
PIPE_RAW_DETAILS = [
    "blocked: pii detected", "Content blocked: secret", "", None,
    {"error": "Content blocked: prompt injection"}, "rate limited", "upstream timeout",
]
FAIL_STATUSES = [400, 400, 400, 403, 422]
ERROR_STATUSES = [429, 429, 500, 401, 408, "runtime"]
MODIFY_MESSAGES = ["Request refused by policy", "", None, "Response replaced"]


def _check_pattern_pools() -> None:
    for p in VALID_MODEL_PATTERNS:
        re.compile(p)
    for p in INVALID_MODEL_PATTERNS:
        try:
            re.compile(p)
        except re.error:
            continue
        raise AssertionError(f"pattern {p!r} was supposed to be Python-invalid")


# ─────────────────────────────────────────────────────────────────────────────
# Policy-case generation
# ─────────────────────────────────────────────────────────────────────────────


def _names(rng: random.Random, lo: int, hi: int, pool: list) -> list:
    """lo..hi names from pool, duplicates possible (~15%)."""
    out = [rng.choice(pool) for _ in range(rng.randint(lo, hi))]
    if out and rng.random() < 0.15:
        out.append(rng.choice(out))
    return out


def gen_guardrails(rng: random.Random):
    """Returns (present, value) for the `guardrails` key, and the policy's own add list."""
    r = rng.random()
    if r < 0.08:
        return False, None, []
    if r < 0.12:
        return True, None, []
    if r < 0.17:
        return True, {}, []
    if r < 0.28:  # legacy list form == add
        lst = _names(rng, 0, 3, GUARDRAIL_POOL)
        return True, lst, lst
    g: dict = {}
    add: list = []
    ra = rng.random()
    if ra < 0.1:
        pass  # absent
    elif ra < 0.18:
        g["add"] = None
    elif ra < 0.25:
        g["add"] = []
    else:
        add = _names(rng, 1, 4, GUARDRAIL_POOL)
        g["add"] = add
    rr = rng.random()
    if rr < 0.5:
        pass
    elif rr < 0.58:
        g["remove"] = None
    elif rr < 0.64:
        g["remove"] = []
    else:
        rem = _names(rng, 1, 2, GUARDRAIL_POOL)
        if add and rng.random() < 0.35:
            rem.append(rng.choice(add))  # add+remove of the same name
        g["remove"] = rem
    if rng.random() < 0.03:
        g["foo"] = ["ignored"]  # unknown key inside guardrails: ignored by the parser
    return True, g, add


def gen_condition(rng: random.Random):
    r = rng.random()
    if r < 0.52:
        return False, None
    if r < 0.57:
        return True, {}
    if r < 0.60:
        return True, None
    if r < 0.65:
        return True, {"model": None}
    if r < 0.82:
        return True, {"model": rng.choice(MODEL_PATTERNS)}
    if r < 0.94:
        return True, {"model": [rng.choice(MODEL_PATTERNS) for _ in range(rng.randint(0, 3))]}
    return True, {"model": rng.choice(["gpt-4", "gpt-.*", "o1"]), "team": "x"}


def gen_step(rng: random.Random, own_add: list, pool: list, action_weights=None, own_prob: float = 0.65) -> dict:
    step: dict = {}
    if own_add and rng.random() < own_prob:
        step["guardrail"] = rng.choice(own_add)
    else:
        step["guardrail"] = rng.choice(pool)
    weights = action_weights or {"on_pass": [2, 1, 4, 1], "on_fail": [1, 4, 2, 2], "on_error": [1, 3, 3, 1]}
    for field in ("on_pass", "on_fail"):
        if rng.random() < 0.7:
            step[field] = rng.choices(PIPELINE_ACTIONS, weights=weights[field])[0]
    r = rng.random()
    if r < 0.15:
        step["on_error"] = None
    elif r < 0.55:
        step["on_error"] = rng.choices(PIPELINE_ACTIONS, weights=weights["on_error"])[0]
    r = rng.random()
    if r < 0.35:
        step["pass_data"] = True
    elif r < 0.55:
        step["pass_data"] = False
    r = rng.random()
    if r < 0.35:
        step["modify_response_message"] = rng.choice(MODIFY_MESSAGES)
    # shuffle key order a bit (irrelevant to LiteLLM, but keeps the Rust parser honest)
    items = list(step.items())
    rng.shuffle(items)
    return dict(items)


def gen_pipeline(rng: random.Random, own_add: list, clean: bool) -> dict:
    p: dict = {}
    r = rng.random()
    if r < 0.45:
        p["mode"] = "pre_call"
    elif r < 0.8:
        p["mode"] = "post_call"
    # else: missing -> pre_call
    p["steps"] = [
        gen_step(rng, own_add, GUARDRAIL_POOL, own_prob=1.0 if clean else 0.65) for _ in range(rng.randint(1, 4))
    ]
    return p


def gen_policy_body(rng: random.Random, name: str, case_names: list, clean: bool) -> dict:
    """A syntactically valid policy body. `clean` cases avoid most validation errors."""
    body: dict = {}
    earlier = case_names[: case_names.index(name)]
    if rng.random() < 0.45:
        r = rng.random()
        if r < 0.72:
            if earlier and (clean or rng.random() < 0.6):
                body["inherit"] = rng.choice(earlier)  # acyclic
            elif clean:
                body["inherit"] = None
            else:
                body["inherit"] = rng.choice(case_names)  # may be itself / close a cycle
        elif r < 0.86 and not clean:
            body["inherit"] = rng.choice(MISSING_POLICY_NAMES)
        elif r < 0.93:
            body["inherit"] = None
        else:
            body["inherit"] = ""
    if rng.random() < 0.25:
        body["description"] = f"policy {name}"
    present, g, own_add = gen_guardrails(rng)
    if present:
        body["guardrails"] = g
    present, c = gen_condition(rng)
    if present:
        body["condition"] = c
    if rng.random() < 0.15 and (own_add or not clean):
        body["pipeline"] = gen_pipeline(rng, own_add, clean)
    elif rng.random() < 0.03:
        body["pipeline"] = None
    if rng.random() < 0.05:
        k = rng.choice(["scope", "statements", "foo"])
        body[k] = {"scope": "*", "statements": [], "foo": 1}[k]
    items = list(body.items())
    rng.shuffle(items)
    return dict(items)


INVALID_KINDS = [
    "condition_string", "inherit_int", "condition_model_int", "guardrails_string", "body_null",
    "pipeline_mode_during_call", "action_retry", "empty_steps", "unknown_step_key",
]


def make_invalid(rng: random.Random, body):
    kind = rng.choice(INVALID_KINDS)
    if kind == "body_null":
        return kind, None
    body = dict(body)
    if kind == "condition_string":
        body["condition"] = rng.choice(["gpt-4", "gpt-.*"])
    elif kind == "inherit_int":
        body["inherit"] = 5
    elif kind == "condition_model_int":
        body["condition"] = {"model": 5}
    elif kind == "guardrails_string":
        body["guardrails"] = "abc"
    elif kind == "pipeline_mode_during_call":
        body["pipeline"] = {"mode": "during_call", "steps": [{"guardrail": "g1"}]}
    elif kind == "action_retry":
        body["pipeline"] = {"mode": "pre_call", "steps": [{"guardrail": "g1", "on_fail": "retry"}]}
    elif kind == "empty_steps":
        body["pipeline"] = {"mode": rng.choice(["pre_call", "post_call"]), "steps": []}
    elif kind == "unknown_step_key":
        body["pipeline"] = {"steps": [{"guardrail": "g1", "retries": 2}]}
    return kind, body


def gen_dimension(rng: random.Random, patterns: list):
    """(present, value) for teams/keys/models/tags."""
    r = rng.random()
    if r < 0.55:
        return False, None
    if r < 0.62:
        return True, None
    if r < 0.69:
        return True, []
    return True, _names(rng, 1, 3, patterns)


def gen_attachment(rng: random.Random, case_names: list) -> dict:
    a: dict = {}
    r = rng.random()
    if r < 0.82:
        a["policy"] = rng.choice(case_names)
    elif r < 0.95:
        a["policy"] = rng.choice(MISSING_POLICY_NAMES)
    # else: no policy key -> ""
    r = rng.random()
    if r < 0.2:
        a["scope"] = "*"
    elif r < 0.3:
        a["scope"] = rng.choice(["all", "", " * ", None])
    for field, pats in (("teams", TEAM_PATTERNS), ("keys", KEY_PATTERNS),
                        ("models", ATTACH_MODEL_PATTERNS), ("tags", TAG_PATTERNS)):
        present, v = gen_dimension(rng, pats)
        if present:
            a[field] = v
    r = rng.random()
    if r < 0.45:
        pass
    elif r < 0.52:
        a["priority"] = None
    elif r < 0.97:
        a["priority"] = rng.choice([-5, -1, 0, 0, 1, 1, 2, 10])
    else:
        a["priority"] = rng.choice([2147483647, -2147483648])
    r = rng.random()
    if r < 0.15:
        a["default"] = True
    elif r < 0.25:
        a["default"] = False
    if rng.random() < 0.03:
        a["foo"] = "ignored"  # unknown attachment key: ignored by the config parser
    items = list(a.items())
    rng.shuffle(items)
    return dict(items)


INVALID_ATTACHMENT_KINDS = ["teams_string", "priority_string", "priority_too_big", "default_null"]


def make_invalid_attachment(rng: random.Random, att: dict):
    kind = rng.choice(INVALID_ATTACHMENT_KINDS)
    att = dict(att)
    if kind == "teams_string":
        att["teams"] = "finance"
    elif kind == "priority_string":
        att["priority"] = "high"
    elif kind == "priority_too_big":
        att["priority"] = 2147483648
    else:
        att["default"] = None
    return kind, att


def gen_context(rng: random.Random) -> dict:
    r = rng.random()
    if r < 0.2:
        tags = None
    elif r < 0.3:
        tags = []
    else:
        tags = [rng.choice(TAG_VALUES) for _ in range(rng.randint(1, 3))]
    return {
        "team_alias": rng.choice(TEAM_VALUES),
        "key_alias": rng.choice(KEY_VALUES),
        "model": rng.choice(CONTEXT_MODELS),
        "tags": tags,
    }


def gen_policy_case(seed: int) -> tuple[dict, dict]:
    """Returns (raw case inputs, generation notes)."""
    rng = random.Random(seed)
    notes: dict = {}
    policies: dict = {}
    chain_len = None
    r = rng.random()
    if r < 0.006:
        chain_len = 100
    elif r < 0.012:
        chain_len = 101

    n = rng.randint(2, 12)
    names = rng.sample(POLICY_POOL, n)
    if rng.random() < 0.015:
        names[rng.randrange(len(names))] = ""  # empty policy name (an attachment with no policy key targets it)
    clean = rng.random() < 0.35
    if clean:
        notes["clean"] = True
    for name in names:
        policies[name] = gen_policy_body(rng, name, names, clean)

    # deliberate cycles
    bodies_ok = [nm for nm in names]
    if clean:
        bodies_ok = []
    if rng.random() < 0.15 and len(bodies_ok) >= 2:
        a, b = rng.sample(bodies_ok, 2)
        policies[a]["inherit"], policies[b]["inherit"] = b, a
        notes["cycle2"] = True
    if rng.random() < 0.1 and len(bodies_ok) >= 3:
        a, b, c = rng.sample(bodies_ok, 3)
        policies[a]["inherit"], policies[b]["inherit"], policies[c]["inherit"] = b, c, a
        notes["cycle3"] = True
    if rng.random() < 0.08 and bodies_ok:
        a = rng.choice(bodies_ok)
        policies[a]["inherit"] = a
        notes["self"] = True

    if chain_len is not None:
        notes["chain"] = chain_len
        chain_names = [f"c{i:03d}" for i in range(chain_len)]
        chain_bodies = {}
        for i, cn in enumerate(chain_names):
            body: dict = {}
            if i > 0:
                body["inherit"] = chain_names[i - 1]
            body["guardrails"] = {"add": [rng.choice(GUARDRAIL_POOL)]}
            if rng.random() < 0.2:
                body["guardrails"]["remove"] = [rng.choice(GUARDRAIL_POOL)]
            if rng.random() < 0.05:
                body["condition"] = {"model": rng.choice(MODEL_PATTERNS)}
            chain_bodies[cn] = body
        order = list(chain_bodies.items())
        if rng.random() < 0.5:
            order.reverse()
        policies.update(order)
        names = names + chain_names

    # ~5% of cases: one (sometimes two) syntactically invalid policies
    if rng.random() < 0.05:
        victims = rng.sample(list(policies), 2 if rng.random() < 0.2 else 1)
        kinds = []
        for v in victims:
            kind, policies[v] = make_invalid(rng, policies[v])
            kinds.append(kind)
        notes["invalid"] = kinds

    attach_targets = names if chain_len is None else names[:n] + rng.sample(names[n:], 5) + [names[-1]]
    attachments = [gen_attachment(rng, attach_targets) for _ in range(rng.randint(0, 8))]
    if attachments and rng.random() < 0.2:
        attachments.append(dict(rng.choice(attachments)))  # exact duplicate attachment
    if attachments and rng.random() < 0.012:
        i = rng.randrange(len(attachments))
        kind, attachments[i] = make_invalid_attachment(rng, attachments[i])
        notes["invalid_attachment"] = kind

    r = rng.random()
    if r < 0.45:
        available = None
    elif r < 0.52:
        available = []
    else:
        drop = set() if clean or rng.random() < 0.3 else set(rng.sample(GUARDRAIL_POOL, rng.randint(1, 3)))
        available = sorted(g for g in GUARDRAIL_POOL if g not in drop)
        if rng.random() < 0.2:
            available.append("unused-guardrail")
            available.sort()

    n_ctx = rng.randint(3, 6) if chain_len is None else 3
    contexts = [gen_context(rng) for _ in range(n_ctx)]
    return {
        "policies": policies,
        "attachments": attachments,
        "available_guardrails": available,
        "contexts": contexts,
    }, notes


# ─────────────────────────────────────────────────────────────────────────────
# Asking LiteLLM
# ─────────────────────────────────────────────────────────────────────────────


def _roundtrip(v):
    """Exactly the JSON the Rust side reads (and a private copy LiteLLM may not alter)."""
    return json.loads(json.dumps(v))


def _err(e) -> dict:
    et = e.error_type
    return {
        "policy_name": e.policy_name,
        "error_type": et.value if hasattr(et, "value") else str(et),
        "field": e.field,
        "value": e.value,
        "message": e.message,
    }


def _resolved(r) -> dict:
    return {"guardrails": sorted(r.guardrails), "inheritance_chain": list(r.inheritance_chain)}


async def _validate(raw_policies: dict, available) -> dict:
    validator = PolicyValidator()
    avail_set = set(available) if available is not None else set()
    # null: existence checks skipped (LiteLLM's own lookup also yields an empty set offline).
    validator.get_available_guardrails = lambda: set(avail_set)
    res = await validator.validate_policy_config(raw_policies)
    return {
        "valid": res.valid,
        "errors": [_err(e) for e in res.errors],
        "warnings": [_err(e) for e in res.warnings],
    }


def run_policy_case(loop: asyncio.AbstractEventLoop, seed: int) -> tuple[dict, dict]:
    raw, notes = gen_policy_case(seed)
    raw = _roundtrip(raw)
    case: dict = {
        "id": f"case-{seed}",
        "seed": seed,
        "policies": raw["policies"],
        "attachments": raw["attachments"],
        "available_guardrails": raw["available_guardrails"],
    }
    case["validation"] = loop.run_until_complete(
        _validate(copy.deepcopy(raw["policies"]), raw["available_guardrails"])
    )
    case["load_error"] = None
    case["no_context"] = {}
    case["contexts"] = []

    registry = PolicyRegistry()
    attachments = AttachmentRegistry()
    try:
        registry.load_policies(copy.deepcopy(raw["policies"]))
        attachments.load_attachments(copy.deepcopy(raw["attachments"]))
    except Exception as e:  # noqa: BLE001 - LiteLLM raises ValueError; record whatever it is
        case["load_error"] = str(e)
        return case, notes
    policies = registry.get_all_policies()

    case["no_context"] = {
        name: _resolved(PolicyResolver.resolve_policy_guardrails(name, policies, None)) for name in policies
    }
    for ctx_raw in raw["contexts"]:
        ctx = PolicyMatchContext(**ctx_raw)
        matched = attachments.get_attached_policies_with_reasons(ctx, PolicyMatcher.policy_applies(ctx, policies))
        matched = [{"policy_name": m["policy_name"], "matched_via": m["matched_via"]} for m in matched]
        matched_names = [m["policy_name"] for m in matched]
        per_policy = {name: PolicyResolver.resolve_policy_guardrails(name, policies, ctx) for name in policies}
        effective: set = set()
        for name in matched_names:
            effective.update(
                per_policy[name].guardrails
                if name in per_policy
                else PolicyResolver.resolve_policy_guardrails(name, policies, ctx).guardrails
            )
        # cross-check with LiteLLM's own union helper
        union = PolicyResolver.resolve_guardrails_for_context(ctx, policies=policies, policy_names=matched_names)
        assert sorted(union) == sorted(effective), (seed, union, effective)
        pipelines = PolicyResolver.resolve_pipelines_for_context(ctx, policies=policies, policy_names=matched_names)
        case["contexts"].append({
            "context": ctx_raw,
            "matched": matched,
            "effective_guardrails": sorted(effective),
            "policies": {name: _resolved(r) for name, r in per_policy.items()},
            "pipelines": [
                {
                    "policy": pname,
                    "mode": pipe.mode,
                    "steps": [
                        {
                            "guardrail": s.guardrail,
                            "on_pass": s.on_pass,
                            "on_fail": s.on_fail,
                            "on_error": s.on_error,
                            "pass_data": s.pass_data,
                            "modify_response_message": s.modify_response_message,
                        }
                        for s in pipe.steps
                    ],
                }
                for pname, pipe in pipelines
            ],
        })
    return case, notes


# ─────────────────────────────────────────────────────────────────────────────
# Pipeline cases
# ─────────────────────────────────────────────────────────────────────────────


def _response(text: str):
    return litellm.ModelResponse(
        choices=[{"message": {"role": "assistant", "content": text}, "index": 0, "finish_reason": "stop"}],
        model="gpt-4o",
    )


def _response_text(resp) -> str:
    if isinstance(resp, dict):
        return resp["choices"][0]["message"]["content"]
    return resp.choices[0].message.content


class StubGuardrail(CustomGuardrail):
    """Deterministic stub: see README.md ("Pipeline stubs")."""

    def __init__(self, guardrail_name: str, behaviour: dict):
        super().__init__(guardrail_name=guardrail_name)
        self.behaviour = behaviour

    def _verdict(self, text: str) -> bool:
        """Raises for fail/error; returns True when the stub passes."""
        b = self.behaviour
        trigger = b["fail_if_contains"]
        outcome = b["outcome"] if (trigger is None or trigger in text) else "pass"
        if outcome == "fail":
            raise HTTPException(status_code=b["_status"], detail=b["_raw_detail"])
        if outcome == "error":
            if b["_status"] == "runtime":
                raise RuntimeError(b["_raw_detail"] if b["_raw_detail"] is not None else "guardrail crashed")
            raise HTTPException(status_code=b["_status"], detail=b["_raw_detail"])
        return True

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        messages = data.get("messages") or []
        self._verdict(messages[-1]["content"] if messages else "")
        rewrite = self.behaviour["rewrite"]
        if rewrite is None:
            return None
        new_messages = [dict(m) for m in messages]
        if new_messages:
            new_messages[-1]["content"] = new_messages[-1]["content"] + rewrite
        return {**data, "messages": new_messages}  # a NEW payload; nothing mutated in place

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        text = _response_text(response)
        self._verdict(text)
        rewrite = self.behaviour["rewrite"]
        if rewrite is None:
            return None
        return _response(text + rewrite)  # a NEW response object


def _reported_detail(status, raw_detail) -> str:
    """What LiteLLM's executor reports as error_detail for the stub (checked against the real run)."""
    exc: Exception
    if status == "runtime":
        exc = RuntimeError(raw_detail if raw_detail is not None else "guardrail crashed")
        return str(exc)
    exc = HTTPException(status_code=status, detail=raw_detail)
    if status in (400, 403, 422) and exc.detail:
        return str(exc.detail)
    return str(exc)


def gen_pipeline_case(seed: int) -> dict:
    rng = random.Random(f"pipe:{seed}")
    mode = rng.choice(["pre_call", "post_call"])
    loaded = rng.sample(PIPE_GUARDRAILS, rng.randint(1, 4))
    guardrails: dict = {}
    for g in loaded:
        outcome = rng.choices(["pass", "fail", "error"], weights=[5, 3, 2])[0]
        b = {"outcome": outcome, "detail": None, "rewrite": None, "fail_if_contains": None}
        if outcome != "pass":
            status = rng.choice(FAIL_STATUSES if outcome == "fail" else ERROR_STATUSES)
            raw = rng.choice(PIPE_RAW_DETAILS)
            b["_status"], b["_raw_detail"] = status, raw
            b["detail"] = _reported_detail(status, raw)
            if rng.random() < 0.55:
                b["fail_if_contains"] = rng.choice(PIPE_TRIGGERS)
        else:
            b["_status"], b["_raw_detail"] = None, None
        if rng.random() < 0.45:
            b["rewrite"] = rng.choice(PIPE_REWRITES)
        guardrails[g] = b
    step_pool = loaded + ([PIPE_MISSING_GUARDRAIL] if rng.random() < 0.25 else [])
    steps = [
        gen_step(rng, [], step_pool, {"on_pass": [2, 1, 6, 1], "on_fail": [2, 4, 3, 2], "on_error": [2, 3, 3, 1]})
        for _ in range(rng.randint(1, 4))
    ]
    messages = []
    if rng.random() < 0.2:
        messages.append({"role": "system", "content": "You are helpful."})
    for _ in range(rng.randint(1, 2)):
        messages.append({"role": "user", "content": rng.choice(PIPE_TEXTS)})
    if mode == "post_call":
        messages.append({"role": "assistant", "content": rng.choice(PIPE_TEXTS)})
    return {"id": f"pipe-{seed}", "seed": seed, "mode": mode, "steps": steps,
            "guardrails": guardrails, "messages": messages}


def run_pipeline_case(loop: asyncio.AbstractEventLoop, seed: int) -> dict:
    case = gen_pipeline_case(seed)
    stubs = [StubGuardrail(name, b) for name, b in case["guardrails"].items()]
    litellm.callbacks = list(stubs)
    try:
        steps = _roundtrip(case["steps"])
        pipeline = GuardrailPipeline(mode=case["mode"], steps=steps)
        messages = _roundtrip(case["messages"])
        if case["mode"] == "post_call":
            data = {"messages": messages[:-1], "model": "gpt-4o", "metadata": {},
                    "response": _response(messages[-1]["content"])}
        else:
            data = {"messages": messages, "model": "gpt-4o", "metadata": {}}
        result = loop.run_until_complete(PipelineExecutor.execute_steps(
            pipeline.steps, pipeline.mode, data, UserAPIKeyAuth(api_key="x"), "completion", "conformance"
        ))
    finally:
        litellm.callbacks = []

    if case["mode"] == "post_call":
        final_resp = data["response"]
        if result.modified_data is not None and "response" in result.modified_data:
            final_resp = result.modified_data["response"]
        final_messages = messages[:-1] + [{"role": "assistant", "content": _response_text(final_resp)}]
    else:
        src = result.modified_data["messages"] if result.modified_data is not None else messages
        final_messages = [{"role": m["role"], "content": m["content"]} for m in src]

    step_results = [
        {"guardrail_name": s.guardrail_name, "outcome": s.outcome, "action_taken": s.action_taken,
         "error_detail": s.error_detail}
        for s in result.step_results
    ]
    # The stub contract the Rust side reproduces must be exactly what LiteLLM did.
    for s in step_results:
        b = case["guardrails"].get(s["guardrail_name"])
        if b is None:
            assert s["outcome"] == "error" and s["error_detail"] == f"Guardrail '{s['guardrail_name']}' not found", s
        elif s["outcome"] != "pass":
            assert s["outcome"] == b["outcome"], (seed, s, b)
            assert s["error_detail"] == b["detail"], (seed, s, b)
        else:
            assert s["error_detail"] is None, (seed, s)

    for b in case["guardrails"].values():
        del b["_status"], b["_raw_detail"]
    case["expected"] = {
        "terminal_action": result.terminal_action,
        "error_message": result.error_message,
        "modify_response_message": result.modify_response_message,
        "step_results": step_results,
        "final_messages": final_messages,
    }
    return case


# ─────────────────────────────────────────────────────────────────────────────
# Plan cases (api.md §8: traffic figures between two states)
# ─────────────────────────────────────────────────────────────────────────────

PLAN_EDIT_KINDS = [
    "add_guardrail", "drop_guardrail", "remove_guardrail", "unremove_guardrail", "regen_guardrails",
    "inherit", "condition", "remove_policy", "add_policy",
    "remove_attachment", "add_attachment", "edit_attachment", "shuffle_attachments",
]
PLAN_EDIT_WEIGHTS = [3, 2, 2, 1, 2, 2, 3, 2, 2, 2, 3, 3, 1]


def _parent(body):
    """The policy's parent as LiteLLM follows it (`if policy.inherit:`), or None."""
    p = body.get("inherit") if isinstance(body, dict) else None
    return p if isinstance(p, str) and p else None


def _reaches(policies: dict, start: str, target: str) -> bool:
    """Whether `target` is on the inheritance chain from `start` (start included)."""
    seen: set = set()
    cur = start
    while cur is not None and cur not in seen:
        if cur == target:
            return True
        seen.add(cur)
        cur = _parent(policies.get(cur))
    return False


def _own_add(body: dict) -> list:
    g = body.get("guardrails")
    if isinstance(g, list):  # legacy list form == add
        return g
    if isinstance(g, dict):
        return g.get("add") or []
    return []


def _fix_pipeline(rng: random.Random, body: dict) -> None:
    """Keep LiteLLM's rule that pipeline steps name guardrails of the policy's own add list."""
    pl = body.get("pipeline")
    if not isinstance(pl, dict):
        return
    own = _own_add(body)
    if not own:
        del body["pipeline"]
        return
    for step in pl["steps"]:
        if step["guardrail"] not in own:
            step["guardrail"] = rng.choice(own)


def _guardrails_dict(body: dict) -> dict:
    """The policy's `guardrails` in dict form, stored back into the body (a copy to edit)."""
    g = body.get("guardrails")
    if isinstance(g, list):
        g = {"add": list(g)}
    elif isinstance(g, dict):
        g = dict(g)
    else:
        g = {}
    body["guardrails"] = g
    return g


def _pick_policy(rng: random.Random, policies: dict, attachments: list) -> str:
    """A policy to edit: mostly one that an attachment reaches (itself or an ancestor)."""
    reached: list = []
    for a in attachments:
        cur = a.get("policy")
        while cur in policies and cur not in reached:
            reached.append(cur)
            cur = _parent(policies[cur])
    if reached and rng.random() < 0.75:
        return rng.choice(reached)
    return rng.choice(list(policies))


def _edit_state(rng: random.Random, policies: dict, attachments: list, kind: str) -> str:
    """One random edit of a state, in place, keeping it valid; returns what it did."""
    names = list(policies)
    if kind in PLAN_EDIT_KINDS[:5]:  # the guardrails edits
        name = _pick_policy(rng, policies, attachments)
        body = policies[name]
        if kind == "regen_guardrails":
            present, g, _ = gen_guardrails(rng)
            if present:
                body["guardrails"] = g
            else:
                body.pop("guardrails", None)
        else:
            g = _guardrails_dict(body)
            field = "add" if kind in ("add_guardrail", "drop_guardrail") else "remove"
            lst = list(g.get(field) or [])
            if kind in ("add_guardrail", "remove_guardrail"):
                lst.append(rng.choice(GUARDRAIL_POOL))
            elif lst:
                lst.pop(rng.randrange(len(lst)))
            g[field] = lst
        _fix_pipeline(rng, body)
        return f"{kind} {name}"
    if kind == "inherit":
        name = _pick_policy(rng, policies, attachments)
        body = policies[name]
        candidates = [n for n in names if n != name and not _reaches(policies, n, name)]
        if candidates and rng.random() < 0.7:
            body["inherit"] = rng.choice(candidates)
        elif rng.random() < 0.5:
            body["inherit"] = None
        else:
            body.pop("inherit", None)
        return f"inherit {name}"
    if kind == "condition":
        name = _pick_policy(rng, policies, attachments)
        present, c = gen_condition(rng)
        if present:
            policies[name]["condition"] = c
        else:
            policies[name].pop("condition", None)
        return f"condition {name}"
    if kind == "remove_policy":
        if len(names) < 2:
            return "none"
        victim = _pick_policy(rng, policies, attachments)
        grand = _parent(policies[victim])
        for n in names:
            if n != victim and _parent(policies[n]) == victim:
                if grand is not None:
                    policies[n]["inherit"] = grand  # the chain stays acyclic: grand never reached n
                else:
                    del policies[n]["inherit"]
        del policies[victim]
        return f"remove_policy {victim}"
    if kind == "add_policy":
        free = [n for n in POLICY_POOL if n not in policies]
        if not free:
            return "none"
        name = rng.choice(free)
        policies[name] = gen_policy_body(rng, name, names + [name], clean=True)  # parents: earlier names
        if rng.random() < 0.7:
            a = gen_attachment(rng, [name])
            a["policy"] = name
            attachments.insert(rng.randint(0, len(attachments)), a)
        return f"add_policy {name}"
    if kind == "remove_attachment":
        if not attachments:
            return "none"
        attachments.pop(rng.randrange(len(attachments)))
        return "remove_attachment"
    if kind == "add_attachment":
        attachments.insert(rng.randint(0, len(attachments)), gen_attachment(rng, names))
        return "add_attachment"
    if kind == "edit_attachment":
        if not attachments:
            return "none"
        i = rng.randrange(len(attachments))
        a = dict(attachments[i])
        field = rng.choice(["teams", "keys", "models", "tags", "priority", "default", "scope", "policy"])
        pats = {"teams": TEAM_PATTERNS, "keys": KEY_PATTERNS, "models": ATTACH_MODEL_PATTERNS, "tags": TAG_PATTERNS}
        if field in pats:
            present, v = gen_dimension(rng, pats[field])
            if present:
                a[field] = v
            else:
                a.pop(field, None)
        elif field == "priority":
            a["priority"] = rng.choice([None, -1, 0, 1, 2, 10])
        elif field == "default":
            a["default"] = not a.get("default", False)
        elif field == "scope":
            if rng.random() < 0.5:
                a["scope"] = "*"
            else:
                a.pop("scope", None)
        else:
            a["policy"] = rng.choice(names)
        attachments[i] = a
        return f"edit_attachment {field}"
    assert kind == "shuffle_attachments", kind
    rng.shuffle(attachments)
    return kind


def gen_plan_case(seed: int) -> dict:
    """A valid base state, a new state made by random edits of it, and weighted contexts."""
    rng = random.Random(f"plan:{seed}")
    n = rng.randint(2, 9)
    names = rng.sample(POLICY_POOL, n)
    policies = {name: gen_policy_body(rng, name, names, clean=True) for name in names}
    attachments = [gen_attachment(rng, names) for _ in range(rng.randint(1, 8))]
    base = {"policies": policies, "attachments": attachments}
    new = copy.deepcopy(base)
    n_edits = 0 if rng.random() < 0.05 else rng.randint(1, 5)
    edits = [
        _edit_state(rng, new["policies"], new["attachments"], rng.choices(PLAN_EDIT_KINDS, PLAN_EDIT_WEIGHTS)[0])
        for _ in range(n_edits)
    ]
    contexts = [{"context": gen_context(rng), "count": rng.randint(1, 500)} for _ in range(rng.randint(20, 60))]
    return {"id": f"plan-{seed}", "seed": seed, "base": base, "new": new, "edits": edits, "contexts": contexts}


def _litellm_state(loop: asyncio.AbstractEventLoop, state: dict, what: str):
    """Fresh registries loaded with one state (which must be valid and load)."""
    v = loop.run_until_complete(_validate(copy.deepcopy(state["policies"]), None))
    assert v["valid"] and not v["errors"], (what, v)
    registry = PolicyRegistry()
    attachments = AttachmentRegistry()
    registry.load_policies(copy.deepcopy(state["policies"]))
    attachments.load_attachments(copy.deepcopy(state["attachments"]))
    return registry.get_all_policies(), attachments


def _litellm_effective(policies, attachments, ctx_raw: dict) -> list:
    """A context's effective guardrails, through the same calls as run_policy_case."""
    ctx = PolicyMatchContext(**ctx_raw)
    matched = attachments.get_attached_policies_with_reasons(ctx, PolicyMatcher.policy_applies(ctx, policies))
    matched_names = [m["policy_name"] for m in matched]
    effective: set = set()
    for name in matched_names:
        effective.update(PolicyResolver.resolve_policy_guardrails(name, policies, ctx).guardrails)
    union = PolicyResolver.resolve_guardrails_for_context(ctx, policies=policies, policy_names=matched_names)
    assert sorted(union) == sorted(effective), (ctx_raw, union, effective)
    return sorted(effective)


def run_plan_case(loop: asyncio.AbstractEventLoop, seed: int) -> dict:
    case = _roundtrip(gen_plan_case(seed))
    before = _litellm_state(loop, case["base"], f"plan-{seed} base")
    after = _litellm_state(loop, case["new"], f"plan-{seed} new")
    requests, changed = 0, 0
    moved: dict = {}  # guardrail -> [gained, lost]
    for c in case["contexts"]:
        b = _litellm_effective(*before, c["context"])
        a = _litellm_effective(*after, c["context"])
        c["before"], c["after"] = b, a
        requests += c["count"]
        if a != b:
            changed += c["count"]
            for g in set(a) - set(b):
                moved.setdefault(g, [0, 0])[0] += c["count"]
            for g in set(b) - set(a):
                moved.setdefault(g, [0, 0])[1] += c["count"]
    case["traffic"] = {
        "requests": requests,
        "changed": changed,
        "guardrails": [{"guardrail": g, "gained": moved[g][0], "lost": moved[g][1]} for g in sorted(moved)],
    }
    return case


# ─────────────────────────────────────────────────────────────────────────────
# Main
# ─────────────────────────────────────────────────────────────────────────────


def summarize(cases: list, notes_list: list, pipe_cases: list, plan_cases: list, elapsed: float) -> str:
    c = Counter()
    for case, notes in zip(cases, notes_list):
        c["cases"] += 1
        c["policies"] += len(case["policies"])
        c["attachments"] += len(case["attachments"])
        v = case["validation"]
        if not v["valid"]:
            c["validation invalid"] += 1
        types = {e["error_type"] for e in v["errors"]}
        for t in sorted(types):
            c[f"cases with error {t}"] += 1
        if any("too deep" in e["message"] for e in v["errors"]):
            c["cases with 'too deep'"] += 1
        if v["warnings"]:
            c["cases with warnings"] += 1
        if case["load_error"]:
            c["load errors"] += 1
        if "invalid" in notes:
            c["generated invalid policy"] += 1
        if "invalid_attachment" in notes:
            c["generated invalid attachment"] += 1
        if notes.get("chain"):
            c[f"chain of {notes['chain']}"] += 1
        if any(len(r["inheritance_chain"]) < 1 for r in case["no_context"].values()):
            c["cases with empty chain"] += 1
        for ctx in case["contexts"]:
            c["contexts"] += 1
            if ctx["matched"]:
                c["contexts with matches"] += 1
            c["matched entries"] += len(ctx["matched"])
            if any(m["matched_via"].startswith("default:") for m in ctx["matched"]):
                c["contexts matched via default"] += 1
            if ctx["effective_guardrails"]:
                c["contexts with guardrails"] += 1
            if ctx["pipelines"]:
                c["contexts with pipelines"] += 1
    t = Counter(p["expected"]["terminal_action"] for p in pipe_cases)
    o = Counter(s["outcome"] for p in pipe_cases for s in p["expected"]["step_results"])
    lines = [
        f"oracle: {len(cases)} policy cases + {len(pipe_cases)} pipeline cases + {len(plan_cases)} plan cases"
        f" in {elapsed:.1f}s"
    ]
    lines += [f"  {k}: {c[k]}" for k in sorted(c)]
    lines.append(f"  pipeline terminal actions: {dict(sorted(t.items()))}")
    lines.append(f"  pipeline step outcomes: {dict(sorted(o.items()))}")
    lines.append(f"  pipeline modes: {dict(sorted(Counter(p['mode'] for p in pipe_cases).items()))}")
    pc = Counter()
    for p in plan_cases:
        pc["plan contexts"] += len(p["contexts"])
        pc["plan contexts changed"] += sum(c["before"] != c["after"] for c in p["contexts"])
        pc["plan cases with changed traffic"] += p["traffic"]["changed"] > 0
        pc["plan cases with no edit"] += not p["edits"]
        pc["plan requests"] += p["traffic"]["requests"]
        pc["plan requests changed"] += p["traffic"]["changed"]
    lines += [f"  {k}: {pc[k]}" for k in sorted(pc)]
    edits = Counter(e.split(" ")[0] for p in plan_cases for e in p["edits"])
    lines.append(f"  plan edits: {dict(sorted(edits.items()))}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed-start", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--pipeline-count", type=int, default=None,
                    help="number of pipeline cases (default: ceil(count/2), at least 1)")
    ap.add_argument("--plan-count", type=int, default=None,
                    help="number of plan (traffic) cases (default: count // 10, at least 1)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--quiet", action="store_true", help="no summary on stderr")
    args = ap.parse_args()
    if args.count < 0:
        ap.error("--count must be >= 0")
    pipe_count = args.pipeline_count if args.pipeline_count is not None else max(1, math.ceil(args.count / 2))
    plan_count = args.plan_count if args.plan_count is not None else max(1, args.count // 10)

    _check_pattern_pools()
    started = time.monotonic()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    cases, notes_list = [], []
    try:
        for seed in range(args.seed_start, args.seed_start + args.count):
            case, notes = run_policy_case(loop, seed)
            cases.append(case)
            notes_list.append(notes)
        pipe_cases = [run_pipeline_case(loop, seed) for seed in range(args.seed_start, args.seed_start + pipe_count)]
        plan_cases = [run_plan_case(loop, seed) for seed in range(args.seed_start, args.seed_start + plan_count)]
    finally:
        loop.close()

    out = {
        "litellm_version": importlib.metadata.version("litellm"),
        "seed_start": args.seed_start,
        "count": args.count,
        "cases": cases,
        "pipeline_cases": pipe_cases,
        "plan_cases": plan_cases,
    }
    tmp = f"{args.out}.tmp.{os.getpid()}"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, args.out)
    if not args.quiet:
        print(summarize(cases, notes_list, pipe_cases, plan_cases, time.monotonic() - started), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

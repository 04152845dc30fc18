"""Structural rules of terraform/ that `terraform validate` would not catch; they need no provider."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.terraform.hcl import (
    ENV_NAMES,
    ENVIRONMENTS,
    FUNCTIONS,
    GENERATED_VARIABLES,
    MODULES,
    TERRAFORM,
    env_dirs,
    load_dir,
    load_file,
    loads,
    locals_of,
    module_calls,
    module_dirs,
    outputs,
    refers_to,
    resources,
    single,
    variable_order,
    variables,
    walk_strings,
)

TRIAGE = MODULES / "triage"
FUNCTION = MODULES / "function"
STAGE = MODULES / "pubsub-stage"
EXPORTER = MODULES / "exporter"
PUBSUB_AGENT = "serviceAccount:service-${var.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")


def function_calls() -> dict[str, dict]:
    return {name: body for name, body in module_calls(TRIAGE).items() if body["source"] == "../function"}


def stage_calls() -> dict[str, dict]:
    return {name: body for name, body in module_calls(TRIAGE).items() if body["source"] == "../pubsub-stage"}


# --- layout -------------------------------------------------------------------------------------


def test_expected_modules_exist():
    names = {p.name for p in module_dirs()}
    assert {"triage", "function", "pubsub-stage", "exporter", "firestore", "secrets"} <= names


@pytest.mark.parametrize("module", module_dirs(), ids=lambda p: p.name)
def test_every_module_has_main_variables_outputs_versions_and_readme(module: Path):
    missing = [
        f
        for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
        if not (module / f).is_file()
    ]
    assert not missing, f"{module.name} lacks {missing}"


@pytest.mark.parametrize("module", module_dirs(), ids=lambda p: p.name)
def test_every_module_readme_opens_with_a_working_example(module: Path):
    """The first fenced block is HCL calling this module with every required variable, and only
    variables the module declares."""
    text = (module / "README.md").read_text(encoding="utf-8")
    opening = text.split("\n## ", 1)[0]
    match = re.search(r"```hcl\n(.*?)```", opening, re.S)
    assert match, f"{module.name}/README.md does not open with a ```hcl example (before its first ## section)"
    example = loads(match.group(1))
    calls = [body for block in example.get("module", []) for body in block.values()]
    assert calls, f"{module.name}/README.md example does not call the module"
    declared = variables(module)
    required = {name for name, body in declared.items() if "default" not in body}
    for call in calls:
        args = set(call) - {"source", "depends_on", "providers", "count", "for_each"}
        assert required <= args, f"{module.name} example misses required variables {sorted(required - args)}"
        assert args <= set(declared), (
            f"{module.name} example sets undeclared variables {sorted(args - set(declared))}"
        )


@pytest.mark.parametrize(
    "directory", [*module_dirs(), *env_dirs()], ids=lambda p: p.relative_to(TERRAFORM).as_posix()
)
def test_every_variable_has_description_and_type(directory: Path):
    for name, body in variables(directory).items():
        assert body.get("description"), f"{directory.name}: variable {name} has no description"
        assert "type" in body, f"{directory.name}: variable {name} has no type"


@pytest.mark.parametrize(
    "directory", [*module_dirs(), *env_dirs()], ids=lambda p: p.relative_to(TERRAFORM).as_posix()
)
def test_variables_are_alphabetical(directory: Path):
    names = variable_order(directory)
    assert names == sorted(names)


@pytest.mark.parametrize("module", module_dirs(), ids=lambda p: p.name)
def test_collection_variables_are_not_nullable(module: Path):
    for name, body in variables(module).items():
        kind = str(body["type"])
        if re.match(r"^\$\{(map|list|set)\(", kind):
            assert body.get("nullable") is False, f"{module.name}: {name} ({kind}) needs nullable = false"


@pytest.mark.parametrize(
    "directory", [*module_dirs(), *env_dirs()], ids=lambda p: p.relative_to(TERRAFORM).as_posix()
)
def test_every_output_has_a_description(directory: Path):
    for name, body in outputs(directory).items():
        assert body.get("description"), f"{directory.name}: output {name} has no description"


def test_modules_declare_no_provider_blocks():
    for module in module_dirs():
        assert "provider" not in load_dir(module), f"{module.name} configures a provider: only roots may"


# --- functions ----------------------------------------------------------------------------------


def test_triage_deploys_exactly_the_four_functions():
    calls = function_calls()
    assert set(calls) == set(FUNCTIONS)
    for name, call in calls.items():
        assert call["name"] == name
        assert call["entry_point"] == name
        assert call["source_archive"]["object"] == f"${{var.function_source_objects.{name}}}"


def test_every_function_has_its_own_service_account():
    # Inside the module: one service account, created per instance and used as the runtime identity.
    accounts = resources(FUNCTION, "google_service_account")
    assert list(accounts) == ["service_account"]
    assert "count" not in accounts["service_account"] and "for_each" not in accounts["service_account"]
    function = resources(FUNCTION, "google_cloudfunctions2_function")["function"]
    runtime_sa = single(function["service_config"])["service_account_email"]
    assert runtime_sa == "${google_service_account.service_account.email}"
    # The module cannot be handed someone else's account.
    assert not {"service_account", "service_account_email"} & set(variables(FUNCTION))
    # Each instance names a distinct account; none is the default compute account.
    ids = [call["service_account_id"] for call in function_calls().values()]
    assert len(ids) == len(set(ids)) == len(FUNCTIONS)
    for found_path, text in walk_strings(load_dir(TERRAFORM / "modules")):
        assert "-compute@developer.gserviceaccount.com" not in text, found_path


def test_function_service_accounts_get_least_privilege():
    calls = function_calls()
    for name, call in calls.items():
        assert call["project_roles"] == ["roles/datastore.user"], name
    publishers = {name: set(call["publishers"]) for name, call in stage_calls().items()}
    assert publishers == {
        "stage_classify": {"intake", "reconcile"},
        "stage_route": {"classify", "intake", "reconcile"},
    }
    for name, call in stage_calls().items():
        for key, member in call["publishers"].items():
            assert member == f"${{module.{key}.service_account_member}}", (name, key)
    exporter = module_calls(TRIAGE)["exporter"]
    assert exporter["project_roles"] == ["roles/datastore.viewer"]


def test_secrets_are_granted_to_their_consumer_only():
    secrets = locals_of(TRIAGE)["secrets"]
    assert secrets["intake"] == {"TRIAGE_WEBHOOK_SECRET": "triage-webhook-secret"}
    assert set(secrets["classify"]) == {"GEMINI_API_KEY"}
    assert set(secrets["route"]) == {
        "JIRA_API_TOKEN",
        "FRESHSERVICE_API_KEY",
        "SLACK_WEBHOOK_URL",
        "SLACK_REVIEW_WEBHOOK_URL",
        "TRIAGE_OUTBOUND_WEBHOOK_SECRET",
    }
    assert set(secrets["exporter"]) == {"EXPORTER_TOKEN"}
    for name, call in function_calls().items():
        assert call["secret_environment_variables"] == f"${{local.secret_env.{name}}}"
    assert module_calls(TRIAGE)["exporter"]["secret_environment_variables"] == "${local.secret_env.exporter}"
    # Accessor grants: per secret, to the module's own service account.
    for module in (FUNCTION, EXPORTER):
        grants = resources(module, "google_secret_manager_secret_iam_member")
        assert list(grants) == ["secret_accessor"]
        assert grants["secret_accessor"]["role"] == "roles/secretmanager.secretAccessor"
        assert grants["secret_accessor"]["member"] == "${google_service_account.service_account.member}"
    # No project-wide secret access anywhere.
    for module in module_dirs():
        for grant in resources(module, "google_project_iam_member").values():
            assert "secretmanager" not in str(grant.get("role", "")) + str(grant.get("for_each", "")), (
                module.name
            )
    for call in module_calls(TRIAGE).values():
        assert "secretmanager" not in str(call.get("project_roles", ""))


def test_function_environment_variables():
    calls = function_calls()
    common = locals_of(TRIAGE)["common_env"]
    assert set(common) == {
        "GOOGLE_CLOUD_PROJECT",
        "TRIAGE_CLASSIFY_TOPIC",
        "TRIAGE_ROUTE_TOPIC",
        "TRIAGE_LOG_LEVEL",
    }
    for call in calls.values():
        assert "local.common_env" in call["environment_variables"]
    for name in ("GEMINI_MODEL", "TRIAGE_CLASSIFIER_MODE", "TRIAGE_LLM_DAILY_BUDGET_USD"):
        assert name in calls["classify"]["environment_variables"]
    for name in ("JIRA_BASE_URL", "JIRA_EMAIL", "FRESHSERVICE_BASE_URL"):
        assert name in calls["route"]["environment_variables"]


def test_only_intake_is_publicly_invocable():
    """allUsers / allAuthenticatedUsers appear once: as intake's invoker. The exporter is reachable
    without IAM (invoker_iam_disabled) by design, guarded by its EXPORTER_TOKEN bearer token."""
    hits = [
        (path.relative_to(TERRAFORM).as_posix(), where)
        for path in sorted(TERRAFORM.rglob("*.tf"))
        for where, text in walk_strings(load_file(path))
        if any(member in text for member in PUBLIC_MEMBERS)
    ]
    assert hits == [("modules/triage/main.tf", ".module[2].intake.invokers.public")], hits
    calls = function_calls()
    assert calls["intake"]["invokers"] == {"public": "allUsers"}
    for name in ("classify", "route"):
        assert calls[name]["invokers"] == {"pubsub-push": "${google_service_account.push.member}"}
    assert calls["reconcile"]["invokers"] == {"scheduler": "${google_service_account.scheduler.member}"}
    ingress = {name: call["ingress_settings"] for name, call in calls.items()}
    assert ingress == {
        "intake": "ALLOW_ALL",
        "classify": "ALLOW_INTERNAL_ONLY",
        "route": "ALLOW_INTERNAL_ONLY",
        "reconcile": "ALLOW_INTERNAL_ONLY",
    }
    # invoker_iam_disabled: only on the exporter, which always carries its token.
    disabled = {
        path.relative_to(TERRAFORM).as_posix()
        for path in sorted(TERRAFORM.rglob("*.tf"))
        for where, _ in walk_strings(load_file(path))
        if where.endswith(".invoker_iam_disabled")
    }
    assert disabled == {"modules/exporter/main.tf"}
    assert "EXPORTER_TOKEN" in locals_of(TRIAGE)["secrets"]["exporter"]


def test_the_scheduler_calls_the_reconciler_with_its_own_oidc_identity():
    [job] = resources(TRIAGE, "google_cloud_scheduler_job").values()
    target = single(job["http_target"])
    assert target["uri"] == "${module.reconcile.uri}" and target["http_method"] == "POST"
    token = single(target["oidc_token"])
    assert token["service_account_email"] == "${google_service_account.scheduler.email}"
    assert token["audience"] == "${module.reconcile.uri}"
    assert single(job["retry_config"])["retry_count"] == 0  # a missed run is the next run's work


def test_invoker_grants_target_the_cloud_run_service_of_the_function():
    invoker = resources(FUNCTION, "google_cloud_run_v2_service_iam_member")["invoker"]
    assert invoker["role"] == "roles/run.invoker"
    assert invoker["for_each"] == "${var.invokers}"
    assert refers_to(invoker["name"], "google_cloudfunctions2_function.function")


def test_concurrency_above_one_requires_a_full_cpu():
    validations = variables(FUNCTION)["sizing"]["validation"]
    assert any("concurrency == 1" in v["condition"] and ">= 1" in v["condition"] for v in validations)
    for env in env_dirs():
        tfvars = load_file(env / "terraform.tfvars")
        for name, sizing in tfvars["functions"].items():
            if sizing["concurrency"] > 1:
                assert float(sizing["cpu"]) >= 1, (env.name, name)
        assert tfvars["functions"]["classify"]["concurrency"] > 1, env.name


# --- Pub/Sub ------------------------------------------------------------------------------------


def test_every_work_push_subscription_has_dead_letter_retry_and_oidc():
    subs = resources(STAGE, "google_pubsub_subscription")
    assert set(subs) == {"work", "dead_letter"}
    for name, sub in subs.items():
        push = single(sub["push_config"])
        oidc = single(push["oidc_token"])
        assert oidc["service_account_email"] == "${var.push_service_account_email}", name
        assert oidc["audience"] == "${local.push_base}", name
        retry = single(sub["retry_policy"])
        assert {"minimum_backoff", "maximum_backoff"} <= set(retry), name
        assert sub["ack_deadline_seconds"] == "${var.ack_deadline_seconds}", name
        assert single(sub["expiration_policy"])["ttl"] == "", name
    work = subs["work"]
    assert work["name"] == "${var.name}-push"
    assert refers_to(work["topic"], "google_pubsub_topic.work")
    dlp = single(work["dead_letter_policy"])
    assert refers_to(dlp["dead_letter_topic"], "google_pubsub_topic.dead_letter")
    assert dlp["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    # Dead letters go back to the same function and are never dead-lettered again.
    dead = subs["dead_letter"]
    assert dead["name"] == "${local.dead_letter_name}-push"
    assert refers_to(dead["topic"], "google_pubsub_topic.dead_letter")
    assert "dead_letter_policy" not in dead
    assert single(work["push_config"])["push_endpoint"] == "${local.push_endpoints.work}"
    assert single(dead["push_config"])["push_endpoint"] == "${local.push_endpoints.dead_letter}"


def test_push_endpoints_carry_the_topic_path():
    local = locals_of(STAGE)
    assert local["dead_letter_name"] == "${var.name}-dlq"
    assert local["push_endpoints"] == {
        "work": "${local.push_base}/projects/${var.project_id}/topics/${var.name}",
        "dead_letter": "${local.push_base}/projects/${var.project_id}/topics/${local.dead_letter_name}",
    }


def test_retry_and_dead_letter_defaults():
    declared = variables(STAGE)
    assert declared["max_delivery_attempts"]["default"] == 5
    assert "retry_policy" in declared
    retry_type = declared["retry_policy"]["type"]
    assert 'optional(string, "10s")' in retry_type.replace("'", '"')
    assert 'optional(string, "600s")' in retry_type.replace("'", '"')


def test_stages_are_wired_to_their_function():
    calls = stage_calls()
    assert set(calls) == {"stage_classify", "stage_route"}
    topics = locals_of(TRIAGE)["topics"]
    assert topics == {"classify": "triage-classify", "route": "triage-route"}
    for stage in ("classify", "route"):
        call = calls[f"stage_{stage}"]
        assert call["name"] == f"${{local.topics.{stage}}}"
        assert call["push_endpoint"] == f"${{module.{stage}.uri}}"
        assert call["ack_deadline_seconds"] == f"${{var.functions.{stage}.timeout_seconds}}"
        assert call["max_delivery_attempts"] == "${var.pubsub.max_delivery_attempts}"
        assert call["push_service_account_email"] == "${google_service_account.push.email}"


def test_dead_letter_topics_grant_publisher_to_the_pubsub_service_agent():
    assert locals_of(STAGE)["service_agent"] == PUBSUB_AGENT
    topic_grants = resources(STAGE, "google_pubsub_topic_iam_member")
    publisher = topic_grants["dead_letter_publisher"]
    assert refers_to(publisher["topic"], "google_pubsub_topic.dead_letter")
    assert publisher["role"] == "roles/pubsub.publisher"
    assert publisher["member"] == "${local.service_agent}"
    subscriber = resources(STAGE, "google_pubsub_subscription_iam_member")["dead_letter_subscriber"]
    assert refers_to(subscriber["subscription"], "google_pubsub_subscription.work")
    assert subscriber["role"] == "roles/pubsub.subscriber"
    assert subscriber["member"] == "${local.service_agent}"


def test_pubsub_service_agent_can_mint_push_tokens():
    grant = resources(TRIAGE, "google_service_account_iam_member")["push_token_creator"]
    assert grant["role"] == "roles/iam.serviceAccountTokenCreator"
    assert refers_to(grant["service_account_id"], "google_service_account.push")
    assert "@gcp-sa-pubsub.iam.gserviceaccount.com" in grant["member"]


# --- Firestore ----------------------------------------------------------------------------------


def test_firestore_index_and_ttl_policies():
    call = module_calls(TRIAGE)["firestore"]
    assert call["deletion_protection"] == "${var.deletion_protection}"
    assert call["indexes"] == {}  # nothing queries: the exporter reads fixed documents
    assert call["unindexed_fields"] == [{"collection": "pending", "field": "tickets"}]
    ttl = {(f["collection"], f["field"]) for f in call["ttl_fields"]}
    assert ttl == {("idempotency", "expire_at"), ("classify_cache", "expire_at")}
    field = resources(MODULES / "firestore", "google_firestore_field")["ttl"]
    assert field["ttl_config"] == [{}]
    database = resources(MODULES / "firestore", "google_firestore_database")["database"]
    assert database["name"] == "${var.database_name}"
    assert variables(MODULES / "firestore")["database_name"]["default"] == "(default)"
    assert database["type"] == "FIRESTORE_NATIVE"
    assert "var.deletion_protection" in database["delete_protection_state"]
    assert "var.point_in_time_recovery" in database["point_in_time_recovery_enablement"]


# --- secrets never in code ----------------------------------------------------------------------

SECRETISH = re.compile(r"(secret|token|password|passwd|api_?key|credential|private_?key)", re.I)


def _tfvars_files() -> list[Path]:
    return sorted([*TERRAFORM.rglob("*.tfvars"), *TERRAFORM.rglob("*.tfvars.json")])


def _secretish_literals(value, path=""):
    if isinstance(value, dict):
        for key, child in value.items():
            if SECRETISH.search(str(key)) and not isinstance(child, dict | list):
                literal = child not in (None, "") and not (isinstance(child, str) and child.startswith("${"))
                if literal:
                    yield f"{path}.{key}"
            yield from _secretish_literals(child, f"{path}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _secretish_literals(child, f"{path}[{index}]")


def test_no_secret_values_in_tfvars():
    files = _tfvars_files()
    assert len(files) >= len(ENV_NAMES)
    for path in files:
        parsed = load_file(path) if path.suffix == ".tfvars" else json.loads(path.read_text())
        found = list(_secretish_literals(parsed))
        assert not found, f"{path.relative_to(TERRAFORM)} sets secret-looking keys {found}"


def test_secret_detector_flags_literals():
    assert list(_secretish_literals({"jira_api_token": "abc", "x": {"slack_webhook_secret": "s"}})) == [
        ".jira_api_token",
        ".x.slack_webhook_secret",
    ]
    assert not list(_secretish_literals({"api_key": "", "token": "${var.t}", "jira_email": "a@b"}))


def test_no_secret_values_managed_by_terraform():
    for path in sorted(TERRAFORM.rglob("*.tf")):
        parsed = load_file(path)
        for block in parsed.get("resource", []):
            assert "google_secret_manager_secret_version" not in block, path
        assert not [w for w, _ in walk_strings(parsed) if w.endswith(".secret_data")], path


# --- environments -------------------------------------------------------------------------------


def test_environments_are_thin_roots_with_the_same_files():
    for env in env_dirs():
        for name in (
            "main.tf",
            "variables.tf",
            "outputs.tf",
            "versions.tf",
            "terraform.tfvars",
            "backend.tf",
        ):
            assert (env / name).is_file(), f"{env.name} lacks {name}"
        calls = module_calls(env)
        assert list(calls) == ["triage"]
        assert calls["triage"]["source"] == "../../modules/triage"
        assert set(load_dir(env)) <= {"terraform", "provider", "module", "variable", "output"}
    for env in env_dirs():
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "backend.tf"):
            assert (env / name).read_text() == (ENVIRONMENTS / "dev" / name).read_text(), (env.name, name)


def test_every_environment_sets_the_same_variables():
    names = {env.name: set(load_file(env / "terraform.tfvars")) for env in env_dirs()}
    assert len({frozenset(v) for v in names.values()}) == 1, names
    for env in env_dirs():
        declared = set(variables(env))
        set_here = names[env.name]
        assert set_here <= declared, f"{env.name} sets undeclared {sorted(set_here - declared)}"
        assert declared - set_here == GENERATED_VARIABLES, f"{env.name}: unset {sorted(declared - set_here)}"
        # The root passes every variable through to the module, and the module knows them all.
        passed = set(module_calls(env)["triage"]) - {"source"}
        assert passed == declared
        assert passed <= set(variables(TRIAGE))


def test_every_environment_sets_the_same_nested_keys():
    def shape(value):
        if isinstance(value, dict):
            return {key: shape(child) for key, child in value.items() if key != "env"}
        return None

    shapes = {env.name: shape(load_file(env / "terraform.tfvars")) for env in env_dirs()}
    assert shapes["dev"] == shapes["staging"] == shapes["prod"]


def test_prod_is_protected_and_larger():
    dev, prod = (load_file(ENVIRONMENTS / name / "terraform.tfvars") for name in ("dev", "prod"))
    assert prod["deletion_protection"] is True
    assert dev["deletion_protection"] is False
    assert prod["firestore"]["point_in_time_recovery"] is True
    assert set(prod["functions"]) == set(dev["functions"]) == {"intake", "classify", "route"}
    for name in prod["functions"]:  # reconcile keeps its single-instance default everywhere
        assert prod["functions"][name]["max_instances"] > dev["functions"][name]["max_instances"], name
    assert prod["pubsub"]["max_delivery_attempts"] >= dev["pubsub"]["max_delivery_attempts"]
    project_ids = {load_file(env / "terraform.tfvars")["project_id"] for env in env_dirs()}
    assert len(project_ids) == len(ENV_NAMES), "each environment is its own project"


def test_backends_are_empty_gcs_blocks():
    for env in env_dirs():
        terraform = single(load_file(env / "backend.tf")["terraform"])
        assert terraform["backend"] == [{"gcs": {}}], env.name


def test_environment_outputs():
    for env in env_dirs():
        assert {"webhook_url", "exporter_url", "topics", "service_accounts"} <= set(outputs(env))
    assert outputs(TRIAGE)["webhook_url"]["value"] == "${module.intake.uri}/tickets"


def test_provider_constraints_agree():
    constraints = set()
    for path in [*(m / "versions.tf" for m in module_dirs()), *(e / "versions.tf" for e in env_dirs())]:
        terraform = single(load_file(path)["terraform"])
        providers = single(terraform["required_providers"])
        constraints.add(providers["google"]["version"])
    assert len(constraints) == 1, constraints

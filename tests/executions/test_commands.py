"""The operations commands, as an operator types them: what they print, how they exit, what they change."""

from __future__ import annotations

import getpass
import json
import re
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from executions import services
from executions.actors import Actor
from executions.errors import LaunchDenied
from executions.models import EventLevel, Execution, ExecutionStatus, Process
from tests.conftest import ROOT, WorkerProcess

S = ExecutionStatus
OPERATOR = f"cli:{getpass.getuser()}"
ORDER = {"orderId": "ORD-2024-001", "priority": "High"}
ORDER_STEPS = [
    "Step 1/5: Validating order",
    "Step 2/5: Checking inventory",
    "Step 3/5: Charging payment",
    "Step 4/5: Fulfilling order",
    "Step 5/5: Sending confirmation",
]
EVENT_LINE = re.compile(r"\d\d:\d\d:\d\d  (.*)")
TRACE = 'Traceback (most recent call last):\n  File "tests/processes.py", line 29, in raises\nZeroDivisionError'


@pytest.fixture(autouse=True)
def no_broker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the real worker, nothing is sent to the broker (the rows are what the commands read)."""
    if "worker" not in request.fixturenames:
        monkeypatch.setattr(services, "execution_publish", lambda **kwargs: None)
        monkeypatch.setattr(services, "broker_backlog", lambda: 0)


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def command_error(*args: str) -> CommandError:
    with pytest.raises(CommandError) as raised:
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    return raised.value


def started(process_id: str = "order-processing", parameters: dict[str, Any] = ORDER) -> Execution:
    return services.execution_start(process_id=process_id, parameters=dict(parameters), source="cli",
                                    actor=Actor.system("cli:test"))


def claimed(execution: Execution) -> Execution:
    """What a worker does when it takes the execution (no worker needed)."""
    return services.execution_claim(execution_pk=execution.pk, lease="lease-1", worker="w1@test")


def succeeded(execution: Execution) -> Execution:
    claimed(execution)
    services.execution_transition(execution=execution, to=S.SUCCESS, expect_lease="lease-1",
                                  message="Completed successfully", result={"done": True}, percent=100)
    return execution


def failed(execution: Execution) -> Execution:
    """Failed the way the engine records an exception, traceback included for operators."""
    claimed(execution)
    services.execution_transition(
        execution=execution, to=S.FAILED, expect_lease="lease-1", level=EventLevel.ERROR,
        message="Failed at step 2/5: ZeroDivisionError: division by zero",
        event_data={"code": "process_error", "step": 2, "traceback": TRACE},
        error_code="process_error", error_message="ZeroDivisionError: division by zero", error_step=2,
    )
    return execution


def event_messages(stdout: str) -> list[str]:
    return [m.group(1) for line in stdout.splitlines() if (m := EVENT_LINE.fullmatch(line))]


# --- run_process with a real worker ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_runs_the_documented_order_command_to_success_showing_each_step(
    worker: WorkerProcess, subprocess_env: dict[str, str]
) -> None:
    done = manage(subprocess_env, "run_process", "order-processing", "--param", "orderId=ORD-2024-001",
                  "--param", "priority=High", "--wait")

    assert (done.returncode, done.stderr) == (0, "")
    execution = Execution.objects.get()
    lines = done.stdout.splitlines()
    assert lines[0] == f"Started {execution.public_id} (Order Processing): queued"
    messages = event_messages(done.stdout)
    assert messages[0] == f"Queued: started by {OPERATOR} via Command line"
    assert [m for m in messages if m.startswith("Step ")] == ORDER_STEPS
    assert messages[-1] == "Completed successfully"
    summary = next(i for i, line in enumerate(lines) if line.startswith(execution.public_id))
    assert re.fullmatch(rf"{execution.public_id}  order-processing  success  in \d+\.\d s", lines[summary])
    result = json.loads("\n".join(lines[summary + 1:]))
    assert result == execution.result
    assert result["orderId"] == "ORD-2024-001"
    assert re.fullmatch(r"CONF-\d{5}", result["confirmationNumber"])
    assert (execution.status, execution.source, execution.actor_label) == (S.SUCCESS, "cli", OPERATOR)
    assert execution.parameters == {"orderId": "ORD-2024-001", "priority": "High"}


@pytest.mark.django_db(transaction=True)
def test_it_exits_1_with_the_failed_step_error_and_code_but_no_traceback(
    worker: WorkerProcess, subprocess_env: dict[str, str]
) -> None:
    done = manage(subprocess_env, "run_process", "failure-demo", "--wait")

    execution = Execution.objects.get()
    assert done.returncode == 1
    assert done.stderr == f"CommandError: {execution.public_id} ended failed.\n"
    assert "Traceback" not in done.stdout + done.stderr
    messages = event_messages(done.stdout)
    assert [m for m in messages if m.startswith("Step ")] == [
        "Step 1/4: Connecting", "Step 2/4: Reading input", "Step 3/4: Calling payment gateway"]
    assert messages[-1] == "Failed at step 3/4: The payment gateway declined the request (demo failure)."
    assert re.fullmatch(
        rf"{execution.public_id}  failure-demo  failed at step 3/4: The payment gateway declined the request "
        r"\(demo failure\)\. \(gateway_declined\)  in \d+\.\d s",
        done.stdout.splitlines()[-1],
    )


@pytest.mark.django_db(transaction=True)
def test_it_prints_only_the_execution_as_json_on_stdout_with_progress_on_stderr(worker: WorkerProcess) -> None:
    out, err = StringIO(), StringIO()

    call_command("run_process", "order-processing", "--param", "orderId=ORD-2024-001", "--param", "priority=high",
                 "--json", "--wait", stdout=out, stderr=err)

    execution = Execution.objects.get()
    data = json.loads(out.getvalue())
    assert data["executionId"] == execution.public_id
    assert (data["processId"], data["status"], data["source"]) == ("order-processing", "success", "cli")
    assert data["result"] == execution.result
    assert data["result"]["confirmationNumber"].startswith("CONF-")
    assert data["parameters"] == {"orderId": "ORD-2024-001", "priority": "High"}
    assert data["progress"] == {"step": 5, "totalSteps": 5, "percent": 100, "message": "Sending confirmation"}
    assert [m for m in event_messages(err.getvalue()) if m.startswith("Step ")] == ORDER_STEPS


# --- run_process refusals: one line, non-zero exit, nothing started -------------------------------------


def test_it_refuses_an_unknown_process_in_one_line_without_a_traceback(subprocess_env: dict[str, str]) -> None:
    done = manage(subprocess_env, "run_process", "order-procesing", "--param", "orderId=ORD-2024-001")

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "CommandError: There is no process with id 'order-procesing'.\n"


def test_it_lists_every_invalid_parameter_in_one_line(subprocess_env: dict[str, str]) -> None:
    done = manage(subprocess_env, "run_process", "order-processing", "--param", "orderId=ORD-1",
                  "--param", "colour=red")

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "CommandError: Some parameters are not valid. colour: Unknown parameter. Known parameters: amount, "
        "customerId, customerName, emailNotification, metadata, orderId, priority, specialInstructions.; "
        "orderId: Ensure this value has at least 10 characters (it has 5).; priority: This field is required.\n"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "orderId"],
         "--param 'orderId' must look like key=value, for example --param priority=High."),
        (["--param", "=High"],
         "--param '=High' must look like key=value, for example --param priority=High."),
        (["--params-json", "{orderId: 1}"],
         "--params-json is not valid JSON: Expecting property name enclosed in double quotes at position 1."),
        (["--params-json", '["ORD-2024-001"]'],
         "--params-json must be a JSON object, for example '{\"orderId\": \"ORD-2024-001\"}'."),
        (["--param", "orderId=ORD-2024-001", "--param", "priority=High", "--user", "nobody"],
         "There is no user named 'nobody'."),
    ],
    ids=["param-without-equals", "param-without-key", "invalid-json", "json-not-an-object", "unknown-user"],
)
def test_it_refuses_malformed_input_and_starts_nothing(args: list[str], message: str) -> None:
    error = command_error("run_process", "order-processing", *args)

    assert (str(error), error.returncode) == (message, 1)
    assert not Execution.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_paused_process_giving_the_reason() -> None:
    services.process_pause(process=Process.objects.get(slug="order-processing"), reason="stock count")

    error = command_error("run_process", "order-processing", "--params-json", json.dumps(ORDER))

    assert str(error) == ("The process 'order-processing' is paused and does not accept new starts "
                          "(stock count).")
    assert not Execution.objects.exists()


@pytest.mark.django_db
def test_it_applies_the_permissions_of_the_user_named_with_user(staff_user: User, outsider: User) -> None:
    error = command_error("run_process", "order-processing", "--params-json", json.dumps(ORDER),
                          "--user", outsider.username)
    assert str(error) == "You are not allowed to start the process 'order-processing'."
    assert not Execution.objects.exists()

    out = command("run_process", "order-processing", "--params-json", json.dumps(ORDER), "--user", staff_user.username)

    execution = Execution.objects.get()
    assert out == f"Started {execution.public_id} (Order Processing): queued\n"
    assert (execution.actor_label, execution.actor_user, execution.source) == ("sam", staff_user, "cli")


@pytest.mark.django_db
def test_it_starts_without_waiting_and_merges_json_and_key_value_parameters() -> None:
    out = command("run_process", "order-processing", "--params-json", '{"orderId": "ORD-2024-001", "priority": "Low"}',
                  "--param", "priority=High", "--timeout", "60", "--notify-email", "ops@example.com")

    execution = Execution.objects.get()
    assert out == f"Started {execution.public_id} (Order Processing): queued\n"
    assert execution.parameters == {"orderId": "ORD-2024-001", "priority": "High"}
    assert (execution.timeout, execution.notify_email, execution.actor_label) == (60, "ops@example.com", OPERATOR)


# --- list_executions -------------------------------------------------------------------------------------


@pytest.fixture
def history() -> dict[str, Execution]:
    """Four executions, oldest first: a success, a failure, a queued echo and a queued order."""
    return {
        "success": succeeded(started()),
        "failed": failed(started()),
        "echo": started("test-echo", {"text": "hi"}),
        "queued": started(),
    }


@pytest.mark.django_db
def test_it_lists_executions_newest_first_in_a_table(history: dict[str, Execution]) -> None:
    lines = command("list_executions").splitlines()

    assert lines[0].split() == ["EXECUTION", "PROCESS", "STATUS", "SOURCE", "CREATED", "PROGRESS"]
    rows = [line.split() for line in lines[1:]]
    assert [row[:4] for row in rows] == [
        [history["queued"].public_id, "order-processing", "queued", "cli"],
        [history["echo"].public_id, "test-echo", "queued", "cli"],
        [history["failed"].public_id, "order-processing", "failed", "cli"],
        [history["success"].public_id, "order-processing", "success", "cli"],
    ]
    created = history["queued"].created_at
    assert rows[0][4:] == [f"{created:%Y-%m-%d}", f"{created:%H:%M:%S}", "Queued"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--status", "queued"], ["queued", "echo"]),
        (["--status", "failed"], ["failed"]),
        (["--process", "test-echo"], ["echo"]),
        (["--process", "order-processing", "--status", "queued"], ["queued"]),
        (["--limit", "2"], ["queued", "echo"]),
    ],
)
def test_it_filters_the_list_by_status_process_and_limit(
    history: dict[str, Execution], args: list[str], expected: list[str]
) -> None:
    data = json.loads(command("list_executions", "--json", *args))

    assert [row["executionId"] for row in data] == [history[name].public_id for name in expected]


@pytest.mark.django_db
def test_it_lists_executions_as_json_in_the_public_shape(history: dict[str, Execution]) -> None:
    data = json.loads(command("list_executions", "--json", "--status", "failed"))

    assert len(data) == 1
    assert data[0]["executionId"] == history["failed"].public_id
    assert (data[0]["processId"], data[0]["status"], data[0]["startedBy"]) == ("order-processing", "failed",
                                                                                "cli:test")
    assert data[0]["errors"] == [{"code": "process_error", "message": "ZeroDivisionError: division by zero",
                                  "step": 2}]
    assert data[0]["result"] is None


@pytest.mark.django_db
def test_it_says_so_when_no_execution_matches() -> None:
    assert command("list_executions") == "No executions match.\n"
    assert json.loads(command("list_executions", "--json")) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "done"], "Unknown status 'done'. Use one of: awaiting_approval, queued, running, success, "
                               "failed, cancelled, rejected, expired."),
        (["--limit", "0"], "--limit must be at least 1."),
    ],
)
def test_it_refuses_an_unknown_status_or_a_limit_below_one(args: list[str], message: str) -> None:
    assert str(command_error("list_executions", *args)) == message


# --- show_execution --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_shows_an_execution_with_its_events() -> None:
    execution = failed(started())

    lines = command("show_execution", execution.public_id).splitlines()

    assert lines[0] == (f"{execution.public_id}  order-processing  failed at step 2/5: "
                        f"ZeroDivisionError: division by zero (process_error)  in {execution.duration_seconds:.1f} s")
    assert lines[1] == "Started by cli:test via Command line; attempt 1; timeout 300 s"
    assert "\n".join(lines[2:6]) == 'Parameters: {\n  "orderId": "ORD-2024-001",\n  "priority": "High"\n}'
    assert lines[6] == "Events:"
    events = [re.fullmatch(r"  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  (\w+) +(.*)", line).groups() for line in lines[7:]]
    assert events == [
        ("info", "Queued: started by cli:test via Command line"),
        ("info", "Started on w1@test (attempt 1)"),
        ("error", "Failed at step 2/5: ZeroDivisionError: division by zero"),
    ]
    assert "Traceback" not in "\n".join(lines)


@pytest.mark.django_db
def test_it_shows_an_execution_as_json_with_events_but_no_traceback() -> None:
    execution = failed(started())

    data = json.loads(command("show_execution", execution.public_id, "--json"))

    assert (data["executionId"], data["status"]) == (execution.public_id, "failed")
    assert [(e["kind"], e["level"], e["message"]) for e in data["events"]] == [
        ("status", "info", "Queued: started by cli:test via Command line"),
        ("status", "info", "Started on w1@test (attempt 1)"),
        ("status", "error", "Failed at step 2/5: ZeroDivisionError: division by zero"),
    ]
    assert data["events"][-1]["data"] == {"status": "failed", "code": "process_error", "step": 2}
    assert execution.events.last().data["traceback"] == TRACE  # kept in the row, left out of the output


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["show_execution", "cancel_execution", "retry_execution"])
def test_it_refuses_an_unknown_execution_id(name: str) -> None:
    execution = started()

    error = command_error(name, "exec-0000000000000000")

    assert str(error) == "There is no execution with id 'exec-0000000000000000'."
    execution.refresh_from_db()
    assert (execution.status, Execution.objects.count()) == (S.QUEUED, 1)


# --- cancel_execution and retry_execution ----------------------------------------------------------------


@pytest.mark.django_db
def test_it_cancels_a_queued_execution_at_once() -> None:
    execution = started()

    out = command("cancel_execution", execution.public_id)

    assert out == f"{execution.public_id} cancelled.\n"
    execution.refresh_from_db()
    assert execution.status == S.CANCELLED
    assert execution.events.last().message == f"Cancelled by {OPERATOR}"


@pytest.mark.django_db
def test_it_asks_a_running_execution_to_stop_at_its_next_step() -> None:
    execution = claimed(started())

    out = command("cancel_execution", execution.public_id)

    assert out == f"{execution.public_id} is running; cancellation requested, it stops at its next step.\n"
    execution.refresh_from_db()
    assert execution.status == S.RUNNING
    assert execution.cancel_requested_at is not None


@pytest.mark.django_db
def test_it_refuses_to_cancel_a_finished_execution() -> None:
    execution = succeeded(started())
    events = execution.events.count()

    error = command_error("cancel_execution", execution.public_id)

    assert str(error) == f"{execution.public_id} has already finished (success); there is nothing to cancel."
    execution.refresh_from_db()
    assert (execution.status, execution.events.count()) == (S.SUCCESS, events)


@pytest.mark.django_db
def test_it_retries_a_failed_execution_as_a_new_one() -> None:
    original = failed(started())

    out = command("retry_execution", original.public_id)

    retry = Execution.objects.get(retry_of=original)
    assert out == f"Started {retry.public_id} (retry of {original.public_id}): queued\n"
    assert (retry.status, retry.source, retry.actor_label) == (S.QUEUED, "cli", OPERATOR)
    assert retry.parameters == original.parameters
    original.refresh_from_db()
    assert original.status == S.FAILED


@pytest.mark.django_db
def test_it_refuses_to_retry_a_successful_execution() -> None:
    execution = succeeded(started())

    error = command_error("retry_execution", execution.public_id)

    assert str(error) == (f"{execution.public_id} is success; only failed, cancelled, expired or rejected "
                          "executions can be retried.")
    assert Execution.objects.count() == 1


# --- sync_processes and recover_executions ---------------------------------------------------------------


@pytest.mark.django_db
def test_it_reports_that_processes_are_up_to_date() -> None:
    assert command("sync_processes") == "Processes are up to date.\n"


@pytest.mark.django_db
def test_it_reports_created_updated_and_retired_processes() -> None:
    Process.objects.filter(slug="test-echo").delete()
    Process.objects.filter(slug="order-processing").update(name="Old name", steps=3)
    Process.objects.create(slug="legacy-import", name="Legacy import", default_timeout=60)

    out = command("sync_processes")

    assert out == "created: test-echo\nupdated: order-processing\nno longer in code: legacy-import\n"
    order = Process.objects.get(slug="order-processing")
    assert (order.name, order.steps) == ("Order Processing", 5)
    assert not Process.objects.get(slug="legacy-import").is_registered
    assert command("sync_processes") == "Processes are up to date.\n"


@pytest.mark.django_db
def test_it_reports_what_recovery_did() -> None:
    long_ago = timezone.now() - timedelta(minutes=10)
    silent = claimed(started("test-echo", {"text": "hi"}))  # a process that may start again
    once = claimed(started("test-once", {}))
    Execution.objects.filter(pk__in=[silent.pk, once.pk]).update(heartbeat_at=long_ago)
    lost_message = started()
    Execution.objects.filter(pk=lost_message.pk).update(published_at=long_ago)

    out = command("recover_executions")

    assert out == (f"requeued: 1  failed: 1  cancelled: 0  republished: 1\n  requeued {silent.public_id}\n"
                   f"  failed {once.public_id}\n  republished {lost_message.public_id}\n")
    statuses = dict(Execution.objects.values_list("public_id", "status"))
    assert statuses == {silent.public_id: S.QUEUED, once.public_id: S.FAILED, lost_message.public_id: S.QUEUED}
    assert command("recover_executions") == "requeued: 0  failed: 0  cancelled: 0  republished: 0\n"


# --- seed_demo -------------------------------------------------------------------------------------------


@pytest.fixture
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_passwords")
def test_it_seeds_the_demo_once_however_often_it_runs() -> None:
    first = command("seed_demo")
    counts = (User.objects.count(), Group.objects.count(), Permission.objects.filter(group__name="Managers").count())

    second = command("seed_demo")

    assert first == ("created user admin\ncreated user manager\ncreated user staff\ncreated user integrator\n"
                     "demo users: admin, manager, staff, integrator (password from HEPTORA_DEMO_PASSWORD)\n"
                     "created form Order Processing Request (/forms/order-processing/)\n"
                     "created form Submit Monthly Metrics (/forms/monthly-metrics/)\n"
                     "approval policy for sensitive-report: any one of Managers, 4 hours\n"
                     "Demo data is ready.\n")
    assert second == ("demo users: admin, manager, staff, integrator (password from HEPTORA_DEMO_PASSWORD)\n"
                      "Demo data is ready.\n")
    assert (User.objects.count(), Group.objects.count(),
            Permission.objects.filter(group__name="Managers").count()) == counts
    assert set(Group.objects.values_list("name", flat=True)) == {"Managers", "Staff", "Department Managers"}


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_passwords")
def test_it_lets_each_demo_user_log_in_with_the_demo_password(client: Client) -> None:
    command("seed_demo")

    for username in ["admin", "manager", "staff", "integrator"]:
        assert client.login(username=username, password="heptora-demo"), username
        client.logout()
    assert not client.login(username="admin", password="wrong")


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_passwords")
def test_it_uses_the_configured_demo_password(client: Client, settings: Any) -> None:
    settings.HEPTORA_DEMO_PASSWORD = "s3cret-for-the-demo"

    command("seed_demo")

    assert client.login(username="manager", password="s3cret-for-the-demo")
    client.logout()
    assert not client.login(username="manager", password="heptora-demo")


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_passwords")
def test_seeding_again_keeps_a_changed_password_and_a_disabled_user(client: Client) -> None:
    command("seed_demo")
    admin = User.objects.get(username="admin")
    admin.set_password("only-the-operator-knows")
    admin.save()
    User.objects.filter(username="integrator").update(is_active=False)

    command("seed_demo")

    assert client.login(username="admin", password="only-the-operator-knows")
    assert not User.objects.get(username="integrator").is_active


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_passwords")
def test_reset_passwords_sets_the_demo_password_again(client: Client) -> None:
    command("seed_demo")
    admin = User.objects.get(username="admin")
    admin.set_password("forgotten-long-ago")
    admin.save()

    out = command("seed_demo", "--reset-passwords")

    assert "reset the password of admin\n" in out
    assert client.login(username="admin", password="heptora-demo")


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_passwords")
def test_it_gives_each_demo_user_their_role() -> None:
    command("seed_demo")
    users = {u.username: u for u in User.objects.filter(username__in=["admin", "manager", "staff", "integrator"])}

    assert (users["admin"].is_superuser, users["admin"].is_staff) == (True, True)
    assert (users["manager"].is_superuser, users["manager"].is_staff) == (False, True)
    assert set(users["manager"].groups.values_list("name", flat=True)) == {"Managers", "Department Managers"}
    assert users["manager"].has_perm("executions.view_execution")
    assert list(users["staff"].groups.values_list("name", flat=True)) == ["Staff"]
    assert (users["staff"].is_staff, users["integrator"].is_staff) == (False, False)
    for username in ["staff", "integrator"]:
        execution = services.execution_start(process_id="order-processing", parameters=dict(ORDER), source="api",
                                             actor=Actor.for_user(users[username]))
        assert (execution.status, execution.actor_user) == (S.QUEUED, users[username])
    with pytest.raises(LaunchDenied) as denied:
        services.execution_start(process_id="test-echo", parameters={"text": "hi"}, source="form",
                                 actor=Actor.for_user(users["staff"]))
    assert str(denied.value) == "You are not allowed to start the process 'test-echo'."
    assert Execution.objects.count() == 2

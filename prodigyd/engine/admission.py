"""Admission: a submission or a resume is checked before it is acknowledged (reference §4.1).

`prepare` validates everything a user can get wrong (the workflow file, the repository and
branch, the environment, the claude executable) and builds the session record, so those
errors reach `prodigyctl run` as usage errors (exit code 2), never as a failed job.
`check_resumable` refuses the resumes that cannot be right. Nothing here writes anything:
the scheduler stores what it accepts.

The job environment is composed here exactly as the run composes it (`compose_environment`,
the one home of that recipe), so an error it would meet later surfaces now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prodigyd import errorcodes, paths
from prodigyd.claude.cli import resolve_binary as resolve_claude
from prodigyd.config import ExecutorConfig
from prodigyd.engine import env as job_env
from prodigyd.engine.mask import Masker
from prodigyd.engine.plan import run_count, steps_before, total_steps
from prodigyd.errors import Conflict, GitError, Location, NotFound, StoreError, WorkflowError
from prodigyd.git import repo as git_repo
from prodigyd.pool import WorktreePool
from prodigyd.store import checkpoints
from prodigyd.store.ids import new_session_id
from prodigyd.store.sessions import DlqRetry, Runs, SessionRecord, Status
from prodigyd.watch.variables import variables as trigger_variables
from prodigyd.workflow.compose import params
from prodigyd.workflow.generate import matching_files
from prodigyd.workflow.interpolate import VariableStore
from prodigyd.workflow.load import LoadedWorkflow, load_workflow_async
from prodigyd.workflow.model import Budget, Workflow, every_step


@dataclass
class RunRequest:
    """What a client submits: resolved paths plus the caller's environment."""

    workflow: str
    cwd: str
    env: dict[str, str]
    repo: str | None = None
    args: tuple[str, ...] = ()
    params: dict[str, Any] | None = None  # --param values (over --param-file ones)
    profile: str | None = None
    merge_policy: str = "ask"
    strict: bool = False
    dlq_retry: DlqRetry | None = None  # re-run dead letters of another job (dlq retry)
    branch: str | None = None  # into this branch, not the one checked out (dlq retry, triggers)
    triggered_by: str | None = None  # the git event behind it, for people reading the record
    start_commit: str | None = None  # start here (a commit id), not at the branch's tip
    budget: Budget | None = None  # the command line's --budget-*, over the workflow's budget:
    max_iterations: int = 1  # run -n: the steps run this many times (per input)
    map_patterns: tuple[str, ...] = ()  # run --map: once per committed file matching one
    each_arg: bool = False  # run --each-arg: once per --args value
    fail_fast: bool = False  # with inputs: stop at the first that fails
    executor: ExecutorConfig | None = None  # --executor, --executor-address


async def prepare(
    request: RunRequest, *, claude_bin: str | None = None
) -> tuple[SessionRecord, LoadedWorkflow]:
    """Validate a submission and build its session record (nothing is written yet).

    Everything a user can get wrong is checked here, before the job is acknowledged: the
    workflow file, the repository and branch, the environment (profile, env files, secrets)
    and the claude executable when a step needs it. `record.args` comes back masked.
    """
    workflow_path = Path(request.cwd, request.workflow).expanduser()
    where = Path(request.cwd, request.repo or ".").expanduser()
    try:
        if request.branch:  # a DLQ retry goes back into its job's branch, checked out or not
            repo, branch = await git_repo.repo_root(where), request.branch
        else:
            repo, branch = await git_repo.root_and_branch(where)
    except GitError:
        # The workflow's own errors come first: the user fixes the file, then the place.
        await load_workflow_async(workflow_path, strict=request.strict)
        raise
    loaded = await load_workflow_async(workflow_path, strict=request.strict, inside=repo)
    if request.branch and not await git_repo.branch_exists(repo, request.branch):
        raise GitError(f"branch {request.branch!r} no longer exists in {repo}")
    if request.dlq_retry is not None and loaded.workflow.map is None:
        raise WorkflowError(
            f"{loaded.path} is no longer a MapReduce workflow: its dead letters cannot be re-run",
            location=Location(str(loaded.path)),
        )
    parameters = params.resolve(
        loaded.workflow.parameters,
        loaded.workflow.defaults,
        request.params or {},
        where=str(loaded.path),
    )
    # the names --param gives are defined too, even those the workflow does not declare
    variables = loaded.variable_warnings({**request.env, **parameters}, strict=request.strict)
    runs = await _runs(request, loaded, repo, branch)
    session_id = new_session_id(loaded.workflow.mode)
    rid = paths.repo_id(repo)
    record = SessionRecord(
        id=session_id,
        workflow=str(loaded.path),
        workflow_name=loaded.workflow.name,
        workflow_sha256=loaded.sha256,
        repo=str(repo),
        repo_id=rid,
        original_branch=branch,
        worktree="",  # assigned from the worktree pool when the session starts
        branch=f"prodigy-{session_id}",
        cwd=request.cwd,
        args=list(request.args),
        params=parameters,
        profile=request.profile,
        merge_policy=request.merge_policy,
        strict=request.strict,
        mode=loaded.workflow.mode,
        total_steps=total_steps(
            loaded.workflow, request.dlq_retry, runs.count(request.args) if runs else 1
        ),
        dlq_retry=request.dlq_retry,
        triggered_by=request.triggered_by,
        start_commit=request.start_commit,
        budget=request.budget,
        warnings=[*loaded.warnings, *variables],
        runs=runs,
        executor=request.executor,
    )
    masker = await check_environment(loaded.workflow, record, request.env, request.args, claude_bin)
    record.args = masker.mask_obj(list(request.args))
    return record, loaded


async def _runs(
    request: RunRequest, loaded: LoadedWorkflow, repo: Path, branch: str
) -> Runs | None:
    """How often the steps run (engine/runs.py); None: once. `--map` patterns are matched
    here, against the files committed at the commit the session starts from, so a resume
    runs the very inputs the run was submitted with."""
    iterative = bool(request.map_patterns) or request.each_arg
    if request.max_iterations == 1 and not iterative:
        return None
    if loaded.workflow.mode != "standard":
        raise WorkflowError(
            "-n/--max-iterations, --map and --each-arg apply to a standard workflow; a "
            "MapReduce workflow runs its agents once per work item (map.input)",
            location=Location(str(loaded.path)),
        )
    files: list[str] = []
    if request.map_patterns:
        start = request.start_commit or await git_repo.branch_tip(repo, branch)
        files = matching_files(await git_repo.committed_files(repo, start), request.map_patterns)
    runs = Runs(
        iterations=request.max_iterations,
        each_arg=request.each_arg,
        files=files,
        fail_fast=request.fail_fast,
    )
    if iterative and not runs.inputs(request.args):
        patterns = ", ".join(request.map_patterns) or "none"
        raise NotFound(
            "No inputs found from --map patterns or --args",
            hint=f"--map patterns ({patterns}) match committed files of {branch}, relative to "
            f"the repository top; --each-arg runs once per --args value",
        )
    return runs


async def check_environment(
    workflow: Workflow,
    record: SessionRecord,
    env: Mapping[str, str],
    args: Sequence[str],
    claude_bin: str | None,
) -> Masker:
    """Compose the job environment once, as the run will, so its errors surface now
    (what it says, such as an optional env file that is missing, joins the warnings);
    not when there is nothing to compose (env.composes_nothing)."""
    masker = Masker()
    if not job_env.composes_nothing(workflow, record.profile):
        _, composed = await compose_environment(workflow, record, env, args, masker)
        notes = (note for note in composed.notes if note not in record.warnings)
        record.warnings = [*record.warnings, *notes]
    if any(step.kind == "claude" for step in every_step(workflow.phase_steps)):
        resolve_claude(claude_bin, env)
    return masker


async def compose_environment(
    workflow: Workflow,
    record: SessionRecord,
    env: Mapping[str, str],
    args: Sequence[str],
    masker: Masker,
    worktree: Path | None = None,
) -> tuple[VariableStore, job_env.JobEnvironment]:
    """The session's built-in and trigger variables, and its job environment (whose
    secrets `masker` learns); `worktree` is where dynamic env values run (None: not yet)."""
    store = VariableStore()
    store.update(_builtin_variables(record, Path(record.worktree), args))
    store.update(trigger_variables(env))
    composed = await job_env.compose(
        workflow,
        inherited=env,
        profile=record.profile,
        files_root=Path(record.repo),
        store=store,
        masker=masker,
        worktree=worktree,
    )
    return store, composed


def step_index(workflow: Workflow, ref: str) -> int:
    """The 0-based index of the step `resume --from` names: its number (1-based, as `run`
    shows `[2/5]`) or its `name:`/`id:`. Only a standard workflow's steps: a MapReduce job
    resumes by its items (`resume-job`)."""
    if workflow.mode != "standard":
        raise Conflict(
            "resume --from applies to a standard workflow's steps",
            hint="a MapReduce job resumes with its unfinished items: prodigyctl resume-job ID",
        )
    steps = workflow.steps
    if ref.isdigit() and 1 <= int(ref) <= len(steps):
        return int(ref) - 1
    for index, step in enumerate(steps):
        if ref in (step.name, step.id):
            return index
    raise NotFound(
        f"no step {ref!r} to resume from: give its number (1 to {len(steps)}) or its name",
    )


def check_resumable(
    record: SessionRecord, loaded: LoadedWorkflow, *, force: bool, pool: WorktreePool
) -> None:
    """Refuse resumes that cannot be right: finished sessions, changed workflows, a
    worktree that is gone (a session that never got one simply starts afresh), damaged
    checkpoints. `force` runs the steps of a changed workflow, or those damaged checkpoints
    no longer record, all the same."""
    if record.status.active:
        raise Conflict(f"session {record.id} is {record.status.value}", code=errorcodes.WRONG_STATE)
    if not record.status.resumable:
        raise Conflict(
            f"session {record.id} is {record.status.value} and cannot be resumed",
            hint=_not_resumable_hint(record),
            code=errorcodes.WRONG_STATE,
        )
    if loaded.sha256 != record.workflow_sha256 and not force:
        what = f"the workflow file {record.workflow}"
        if loaded.includes:  # the fingerprint covers them: any of them may be the one
            what += f" or a file it includes ({', '.join(sorted(loaded.includes))})"
        raise Conflict(
            f"{what} changed since session {record.id} started",
            hint="resume with --force to run the remaining steps of the edited file",
            code=errorcodes.WORKFLOW_CHANGED,
        )
    if record.dlq_retry is not None and dead_end(record, pool):
        job = record.dlq_retry.job_id
        raise Conflict(
            f"session {record.id} retried dead letters of {job}, which failed again "
            f"and are back in its DLQ: nothing of this session is left to resume",
            hint=f"`prodigyctl dlq retry {job}` runs them again once the cause is fixed",
            code=errorcodes.WRONG_STATE,
        )
    if record.worktree and not pool.holds(record.id, Path(record.worktree)):
        raise Conflict(
            f"the worktree of session {record.id} is gone ({record.worktree})",
            hint="the session cannot be resumed; start a new run",
        )
    if not force:
        refuse_damaged_checkpoints(record, loaded.workflow)


def dead_end(record: SessionRecord, pool: WorktreePool) -> bool:
    """Whether `record` is a DLQ retry whose items all failed again: they are back in the
    DLQ of its job and its worktree went back to the pool (engine/mapreduce/phases.py),
    so nothing of it is left to resume (`check_resumable` refuses it; `sessions.list`
    says it is not `resumable`, and `resume` without an id passes it over)."""
    return (
        record.dlq_retry is not None
        and bool(record.worktree)
        and not pool.holds(record.id, Path(record.worktree))
    )


def _not_resumable_hint(record: SessionRecord) -> str | None:
    """What can still be done with a session `resume` refuses for its status."""
    if record.status is Status.AWAITING_MERGE:
        return "`prodigyctl merge ID` finishes an awaiting_merge session"
    if record.status is Status.CANCELLED and record.worktree:
        return (
            "a cancelled session is over for good (`prodigyctl cancel --resumable` stops one "
            f"to resume later); what it committed stays on branch {record.branch} until "
            f"`prodigyctl worktree gc` deletes it: `git merge {record.branch}` takes it"
        )
    return None


def refuse_damaged_checkpoints(record: SessionRecord, workflow: Workflow) -> None:
    """A checkpoint journal that lost records of steps done would have them run again, and
    a step that committed commit again, with nothing said: refused, naming the file and
    line (store/checkpoints.py `damage`)."""
    runs = run_count(record)
    for phase in checkpoints.phases(record.id):
        # the steps of the phases before; a phase of no steps (map) gets them all
        done = record.completed_steps > steps_before(workflow, phase, runs)
        problem = checkpoints.damage(record.id, phase, steps_done=done)
        if problem is not None:
            raise StoreError(
                f"the checkpoints of session {record.id} are damaged: {problem}; resuming "
                "would run again steps they recorded as done",
                hint=f"look at the session's branch {record.branch} (what its steps "
                f"committed is there), then `prodigyctl resume {record.id} --force` runs "
                "the steps the journal no longer records again (a step that commits "
                "commits again; the journal as it was is kept beside it), or start a new "
                "run; docs/daemon.md, 'A damaged checkpoint journal'",
            )


def _builtin_variables(
    record: SessionRecord, worktree: Path, args: Sequence[str]
) -> dict[str, Any]:
    values: dict[str, Any] = {
        **record.params,  # under the built-in names: a parameter never hides one
        "workflow.name": record.workflow_name,
        "workflow.id": record.id,
        "workflow.iteration": 1,
        "ITERATION": 1,
        "PROJECT_ROOT": str(worktree),
        "WORKTREE": worktree.name,
        "SESSION_ID": record.id,
    }
    if args:
        values["ARG"] = args[0]
    for number, value in enumerate(args, start=1):
        values[f"ARG_{number}"] = value
        values[str(number)] = value
    return values

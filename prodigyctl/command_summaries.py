"""Made by `python -m prodigyctl.manpages` from the commands' help: do not edit.

What `prodigyctl --help` lists each command with (main.py), so that listing them
imports none of their modules."""

# ruff: noqa: E501

SUMMARIES = {
    "analytics": "Cost, tokens, outcomes and time of your sessions, the costliest groups first.",
    "batch": "Run --command once per file matching PATTERN, each in its own agent, and merge.",
    "cancel": "Cancel a session for good: stop a queued or running one, close one that waits (awaiting merge, failed, interrupted).",
    "checkpoints": "List, inspect and delete sessions' checkpoints.",
    "clean": "Remove old sessions, logs and leftovers now, by the retention policy.",
    "completion": "Print the completion script for SHELL (bash, zsh or fish).",
    "config": "Show or edit $PRODIGY_HOME/config.toml (prodigyd reads it when it starts).",
    "daemon": "Start, stop or check the prodigyd daemon.",
    "dlq": "The dead-letter queue: work items a map phase could not do, with every attempt.",
    "events": "Query, count, export and watch events.",
    "exec": "Run one COMMAND in a new worktree and merge its result back to your branch.",
    "explain": "What error CODE (E1002, as in `error[E1002]: ...`) means and what to do about it.",
    "follow": "Watch active jobs live, each line tagged with its job, until they finish.",
    "goal-seek": "Run --command until --validate scores GOAL as reached, then merge the result.",
    "hooks": "Git hooks (post-commit, pre-push) that start the repository's triggered workflows.",
    "init": "Install the Claude commands your workflows use into .claude/commands/.",
    "logs": "Print a session's progress from the start, as `run` shows it.",
    "man": "Man pages: prodigyctl(1) and one per command, prodigyd(8), prodigy-workflow(5), prodigy-config(5).",
    "merge": "Merge a session that is awaiting_merge into the branch it started from.",
    "ps": "Queued and running jobs, and the most recent finished ones.",
    "resume": "Resume a failed or interrupted session from its last checkpoint.",
    "resume-job": "Resume a MapReduce job: finished setup and items are kept, the rest run.",
    "run": "Run WORKFLOW in a new worktree and merge the result back to your branch.",
    "sessions": "List and inspect sessions.",
    "status": "Daemon health: jobs, uptime, store size (never starts it; exit 5).",
    "template": "Workflow templates: register, find and use reusable workflows.",
    "triggers": "Workflows in .prodigy/workflows/ that git events start (their `on:` triggers).",
    "validate": "Check WORKFLOWS without running them (no daemon needed); exit 1 if one has issues.",
    "watch": "Repositories the daemon watches itself: their triggers fire without git hooks.",
    "worktree": "The pool of git worktrees that sessions and map agents run in.",
}

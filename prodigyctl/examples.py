"""Examples of every command: the one home of what `--help` ends with and what the man
pages' EXAMPLES sections show. tests/unit/test_docs_commands.py parses each line with the
real command tree, so an example cannot show an option that does not exist.

Keys are command paths without the program name (`"dlq retry"`); each example is a command
line (from `prodigyctl`) and what it does.
"""

from __future__ import annotations

EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "analytics": (
        ("prodigyctl analytics --since 7d", "cost, tokens and outcomes of the last week"),
        ("prodigyctl analytics --by tool --json", "Claude's tool uses, for a script"),
    ),
    "batch": (
        ("prodigyctl batch '*.py' -c 'black ${item}' --parallel 4", "one agent per file"),
        ("prodigyctl batch 'src/*.rs' -c 'claude: /fix ${item}'", "a Claude command per file"),
    ),
    "cancel": (("prodigyctl cancel 17962057", "stop a job for good (any unique id prefix)"),),
    "checkpoints delete": (
        ("prodigyctl checkpoints delete 17962057", "a finished session's"),
        ("prodigyctl checkpoints delete 17962057 --force", "a failed one's: it restarts"),
    ),
    "checkpoints ls": (("prodigyctl checkpoints ls --status failed", "what can be resumed"),),
    "checkpoints show": (("prodigyctl checkpoints show 17962057", "the steps done"),),
    "clean": (
        ("prodigyctl clean --dry-run", "what the retention policy would remove, and its size"),
        ("prodigyctl clean --older-than 7d", "remove finished sessions older than a week"),
    ),
    "completion": (("prodigyctl completion bash", "the script to eval in ~/.bashrc"),),
    "config get": (("prodigyctl config get max_concurrent_jobs", "one setting's value"),),
    "config path": (("prodigyctl config path", "where config.toml is"),),
    "config set": (("prodigyctl config set claude.timeout 3600", "Claude steps get an hour"),),
    "config show": (("prodigyctl config show --json", "every setting and where it comes from"),),
    "config unset": (("prodigyctl config unset claude.model", "back to the default"),),
    "daemon install-service": (
        ("prodigyctl daemon install-service", "start prodigyd with your systemd user session"),
    ),
    "daemon start": (("prodigyctl daemon start", "start it now (run starts it anyway)"),),
    "daemon status": (("prodigyctl daemon status", "is it running?"),),
    "daemon stop": (("prodigyctl daemon stop --drain", "finish every job, then stop"),),
    "dlq export": (("prodigyctl dlq export --format csv -o dlq.csv", "every entry, as CSV"),),
    "dlq ls": (("prodigyctl dlq ls mapreduce-1796205782603", "one job's failed items"),),
    "dlq purge": (("prodigyctl dlq purge --older-than 30d --yes", "drop old entries"),),
    "dlq retry": (
        ("prodigyctl dlq retry mapreduce-1796205782603 -y", "re-run a job's failed items"),
        ("prodigyctl dlq retry mapreduce-1796205782603 --item item_3", "just one"),
    ),
    "dlq show": (("prodigyctl dlq show mapreduce-1796205782603 item_3", "an item's failures"),),
    "dlq stats": (("prodigyctl dlq stats", "failures by job, error type and cause"),),
    "events export": (
        ("prodigyctl events export --since 1d --format csv -o events.csv", "a day's events"),
    ),
    "events follow": (("prodigyctl events follow --type step_failed", "failures as they come"),),
    "events ls": (("prodigyctl events ls --session 17962057 --json", "a session's events"),),
    "events stats": (("prodigyctl events stats --since 7d", "events by type"),),
    "explain": (
        ("prodigyctl explain E3004", "why a merge was refused, and what to do"),
        ("prodigyctl explain e1002 --json", "the entry for a script: code, title, help"),
    ),
    "exec": (
        ("prodigyctl exec 'make fmt' --retry 3", "one shell command, merged"),
        ("prodigyctl exec 'claude: /refactor main.rs'", "one Claude command, merged"),
    ),
    "follow": (("prodigyctl follow", "the running jobs' output, each line tagged"),),
    "goal-seek": (
        (
            "prodigyctl goal-seek 'All tests pass' -c '/fix-tests' --validate ./score.sh -m 4",
            "repeat until the score reaches 90",
        ),
    ),
    "hooks install": (("prodigyctl hooks install", "run `on: push` workflows from git hooks"),),
    "hooks status": (("prodigyctl hooks status", "which hooks are installed"),),
    "hooks uninstall": (("prodigyctl hooks uninstall", "remove prodigy's hooks"),),
    "init": (
        ("prodigyctl init", "the Claude commands your workflows use"),
        ("prodigyctl init --all --force", "every shipped command, replacing yours"),
    ),
    "logs": (("prodigyctl logs 17962057 -f", "a session's output, then live"),),
    "man install": (("prodigyctl man install", "into ~/.local/share/man"),),
    "man ls": (("prodigyctl man ls", "every page"),),
    "man show": (("prodigyctl man show dlq retry", "one command's page"),),
    "merge": (("prodigyctl merge 17962057", "merge a session that waits for it"),),
    "ps": (("prodigyctl ps", "queued and running jobs, with their items"),),
    "resume": (
        ("prodigyctl resume", "the newest failed or interrupted session here"),
        ("prodigyctl resume 17962057 --budget-usd 5", "on, with a larger budget"),
        ("prodigyctl resume 17962057 --from 2", "again from its second step on"),
    ),
    "resume-job": (("prodigyctl resume-job mapreduce-1796205782603", "the rest of its items"),),
    "run": (
        ("prodigyctl run workflow.yml", "run it and ask before merging"),
        ("prodigyctl run deploy.yml --param env=prod -y", "with a parameter, merge at once"),
        ("prodigyctl run workflow.yml --dry-run", "the plan, without running"),
        ("prodigyctl run improve.yml -n 3", "the whole step list three times"),
        ("prodigyctl run implement.yml --map 'specs/*.md' --fail-fast", "once per spec file"),
    ),
    "sessions ls": (("prodigyctl sessions ls --status failed", "the failed sessions"),),
    "sessions replay": (("prodigyctl sessions replay 17962057 --speed 10", "10x speed"),),
    "sessions show": (("prodigyctl sessions show 17962057 --json", "with Claude's records"),),
    "status": (("prodigyctl status", "daemon health at a glance"),),
    "template delete": (("prodigyctl template delete k8s-deploy --yes", "remove one"),),
    "template init": (("prodigyctl template init k8s-deploy -o deploy.yml", "use a template"),),
    "template list": (("prodigyctl template list", "the registered templates"),),
    "template register": (
        ("prodigyctl template register deploy.yml --name k8s-deploy", "add a template"),
    ),
    "template search": (("prodigyctl template search deploy", "by name or description"),),
    "template show": (("prodigyctl template show k8s-deploy", "its parameters"),),
    "template validate": (("prodigyctl template validate deploy.yml", "does it load?"),),
    "triggers ls": (("prodigyctl triggers ls", "what triggered runs and what was dropped"),),
    "validate": (("prodigyctl validate workflow.yml --strict", "check it; no daemon needed"),),
    "watch add": (("prodigyctl watch add", "watch this repository's workflows"),),
    "watch ls": (("prodigyctl watch ls", "the watched repositories"),),
    "watch rm": (("prodigyctl watch rm", "stop watching this repository"),),
    "worktree clean": (("prodigyctl worktree clean", "remove idle worktrees"),),
    "worktree gc": (("prodigyctl worktree gc --dry-run", "what the collector would do"),),
    "worktree ls": (("prodigyctl worktree ls", "the worktree pool"),),
}


def epilog(path: str) -> str | None:
    """The examples of the command at `path`, as `--help` ends with them (None: none)."""
    examples = EXAMPLES.get(path)
    if not examples:
        return None
    width = max(len(line) for line, _ in examples)
    rows = [f"  {line:<{width}}  # {what}" for line, what in examples]
    return "\b\nExamples:\n" + "\n".join(rows)

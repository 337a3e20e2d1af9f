"""What several test files share: a tiny sweep command and a way to run the CLI."""

from catchjax import cli

SWEEP = ["sweep", "--method", "random", "--benchmark", "synthetic-transnas-micro", "--task",
         "jigsaw", "--trials", "3", "--budget", "5", "--no-progress"]


def _run(*args):
    return cli.main(list(args))

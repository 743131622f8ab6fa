"""Exit codes shared by every subcommand, so CI scripts can branch on them."""

OK = 0
FAILED = 1  # a host or operation failed
INVALID = 2  # the inventory or the command line is wrong
GATE_FAILED = 3  # a swap's gate failed and it was rolled back
CHANGES = 4  # `plan`: there is something to apply
NOT_BETTER = 5  # `models update`: no candidate good enough, nothing stored
INTERRUPTED = 130

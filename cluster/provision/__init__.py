"""plan / apply / destroy / status: make hosts run what the inventory says, and report it."""

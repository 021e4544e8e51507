"Training stages (plain modules): shared loop machinery in `common`, one module per group of stages."

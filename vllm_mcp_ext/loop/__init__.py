"""The agent loop: one `Run` per response (`run`); what the model may call, running the calls,
turn after turn (`runner`)."""

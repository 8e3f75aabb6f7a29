"""The auditor's tools: export a history, verify it, replay it as it stood at a moment, and
prove events, growth and raw readings against signed checkpoints."""

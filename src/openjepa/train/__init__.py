"""The single training loop and what it needs: schedules, checkpoints, logging, device selection."""

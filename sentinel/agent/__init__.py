"""The running agent: lifecycle, lock, status, schedule, systemd notify, the composition root."""

"""The scheduler's rules, free of I/O: cron expressions (cron.py) and when a job is due (schedule.py).
zato.server.scheduler fires jobs by them inside the servers."""

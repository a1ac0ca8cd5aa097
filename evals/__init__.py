"""Quality evaluations of the task API on small labelled sets written for this project."""

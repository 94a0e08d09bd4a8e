"""The ground every app stands on: settings access, database helpers, ids, encryption, raw inserts,
log format, the embedded broker and the Celery task names. It imports no app of this project."""

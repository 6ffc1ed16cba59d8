"""HTTP: the FastAPI apps and routes served on the dashboard's port."""

"""`GET /api/v1/usage/`: what the caller has stored and how much it has called the API."""

"""Import jobs: uploads run in the background (`?async=true`), polled by id from any replica."""

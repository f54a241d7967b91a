"""`python -m router.testing --port 8000`: run the fake provider server until interrupted."""

from router.testing.fake_server import main

main()

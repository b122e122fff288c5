"""`python -m server`: run the NovaSphere API server (settings from NOVASPHERE_* environment variables)."""

from server.main import main

main()

"""gRPC: the AuthService servicer (`service.py`) and the code generated from protos/ (`generated/`,
checked in; regenerate with `make proto`)."""

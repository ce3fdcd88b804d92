"""chuangwei services: intake, projector, and the local development stack."""

"""The HTTP front door: translate HTTP to service calls and back."""

"""The rights of the people in the base (GDPR art. 15-21): see what the broker holds after
proving a number with a one-time code, object, ask for erasure or for a human's answer."""

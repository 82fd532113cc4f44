"""Webhooks: an organisation's endpoints, the events written with the change they announce
(transactional outbox), and their signed delivery (Standard Webhooks) by the workers."""

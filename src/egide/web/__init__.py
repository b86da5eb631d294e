"""The front door: one ASGI dispatcher that mounts every HTTP API Égide serves, and the HTTP
values (request head, body, response) those APIs share."""

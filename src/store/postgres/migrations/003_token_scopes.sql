-- API token scopes (docs/api.md "Authentication"): a space-separated list such as "run" or
-- "apply secret:GITHUB_TOKEN". Tokens made before scopes existed could do everything: admin.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'admin';

"""The poller: fetches news sources on a Redis-side schedule and publishes new articles.

schedule (Redis sorted set, claimed atomically) → conditional GET → parse (RSS/Atom, JSON
Feed, news sitemap, GDELT) → canonicalise → exact and near-duplicate detection → publish to
``vigil:articles``. WebSub hubs can push content between polls.
"""

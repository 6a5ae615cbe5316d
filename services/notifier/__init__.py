"""The notifier: matches alerts to subscriptions and delivers them, durably and once."""

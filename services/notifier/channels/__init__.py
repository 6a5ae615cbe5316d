"""Delivery channels: each turns a job into one message on one medium."""

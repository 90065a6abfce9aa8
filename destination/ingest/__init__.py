"""Ingest: Segment's Tracking API in front of the event log."""

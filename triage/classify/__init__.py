"""Ticket classification: local text model, LLM clients and the hybrid policy."""

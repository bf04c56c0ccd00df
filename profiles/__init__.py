"""The profiles shipped with routeshell; this file makes the directory installable package data."""

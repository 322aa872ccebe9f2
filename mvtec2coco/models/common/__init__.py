"""models/common"""

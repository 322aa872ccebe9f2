"""models/classifier"""

"""models/sam"""

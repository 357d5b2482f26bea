mail.smtp_port = 25

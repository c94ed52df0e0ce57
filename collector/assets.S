/* assets.S - the static files, built into the binary so that a deployment
 * is one file. The path is relative to the top of the tree (make runs there). */
	.section .rodata
	.global col_css
	.global col_css_end
col_css:
	.incbin "collector/static/form.css"
col_css_end:
	.byte 0
	.section .note.GNU-stack,"",@progbits

document.title = 'placeholder'
